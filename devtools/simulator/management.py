"""The Office 365 Management Activity API under /manage/api/v1.0/{tenant}/activity/feed.

- `POST subscriptions/start|stop?contentType=`, `GET subscriptions/list`.
- `GET subscriptions/content?contentType=&startTime=&endTime=`: the content blobs published in the
  window (at most 24 hours, starting at most 7 days ago), 50 per page with a `NextPageUri` header.
- `GET audit/{contentId}`: a blob's records; expired or unknown blobs are AF2005x errors.

Calls need a Management token (`IdentityApi`) and take part in the seeded faults (`FaultPlan`): 403
AF429 throttling, 500 AF50000, 503/504, and listings repeating an item across pages. Tests script
bad blobs and late listings with `ContentFaults` (`content_fault_document`, `listing_hold_document`).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from devtools.simulator.config import SimulatorConfig
from devtools.simulator.faults import ContentFaults, FaultPlan, page_bounds
from devtools.simulator.generator import CONTENT_TYPES, Tenant
from devtools.simulator.identity import IdentityApi
from devtools.simulator.odata import ODataError, PageTokens
from devtools.simulator.render import render
from devtools.simulator.responses import Response, json_response
from devtools.simulator.routing import ApiRequest, quote_query_value
from devtools.simulator.timefmt import US_PER_SECOND, TimeParseError, content_time, parse_time

MANAGEMENT_PAGE_SIZE = 50
MANAGEMENT_MAX_WINDOW_US = 24 * 3600 * US_PER_SECOND
MANAGEMENT_MAX_LOOKBACK_US = 7 * 24 * 3600 * US_PER_SECOND
AF20030 = (
    "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 "
    "hours apart, with the start time no more than 7 days in the past."
)


def af_error(status: int, code: str, message: str) -> Response:
    """A Management Activity API error document: {"error": {"code": "AF...", "message"}}."""
    return json_response(status, {"error": {"code": code, "message": message}})


class ManagementApi:
    """The Management Activity API router: subscriptions, content listings and content blobs.

    Thread-safe: the subscriptions are behind a lock, the blobs are the tenant's.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        tenant: Tenant,
        identity: IdentityApi,
        faults: FaultPlan,
        page_tokens: PageTokens,
    ) -> None:
        self.config = config
        self.content_faults = ContentFaults()
        self._tenant = tenant
        self._identity = identity
        self._faults = faults
        self._page_tokens = page_tokens
        self._lock = threading.Lock()
        self._subscriptions: dict[str, dict[str, Any]] = {}

    def route(self, request: ApiRequest, segments: list[str]) -> Response:
        # segments: api / v1.0 / {tenant} / activity / feed / ...
        lowered = [x.lower() for x in segments]
        publisher = request.param("PublisherIdentifier")
        request.entry["publisher_identifier"] = publisher
        request.entry["has_publisher_identifier"] = bool(
            publisher and publisher.lower() == self.config.tenant_id
        )
        if len(segments) < 6 or lowered[:2] != ["api", "v1.0"] or lowered[3:5] != ["activity", "feed"]:
            return af_error(404, "AF20050", f"The specified content ({request.path}) does not exist.")
        tenant, rest = segments[2], lowered[5:]
        operations: dict[tuple[str, ...], tuple[str, Callable[[ApiRequest], Response]]] = {
            ("subscriptions", "start"): ("POST", self._subscription_start),
            ("subscriptions", "stop"): ("POST", self._subscription_stop),
            ("subscriptions", "list"): ("GET", self._subscription_list),
            ("subscriptions", "content"): ("GET", self._content_list),
        }
        operation = operations.get(tuple(rest))
        if operation is None and len(rest) == 2 and rest[0] == "audit":
            content_id = segments[6]
            operation = ("GET", lambda r: self._content_blob(r, content_id))
        if operation is None:
            return af_error(404, "AF20050", f"The specified content ({request.path}) does not exist.")
        method, handler = operation
        if request.method != method:
            return json_response(
                405, {"Message": f"The requested resource does not support http method '{request.method}'."}
            )
        reason = self._identity.check_token(request, "manage")
        if reason is not None:
            return json_response(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": f"Authorization has been denied for this request. {reason}",
                    }
                },
                WWW_Authenticate='Bearer realm="manage.office.com"',
            )  # fmt: skip
        request.entry["authorized"] = True
        try:
            uuid.UUID(tenant)
        except ValueError:
            return af_error(
                400, "AF20013", f"The tenant ID passed in the URL ({tenant}) is not a valid GUID."
            )
        if tenant.lower() != self.config.tenant_id:
            return af_error(
                400,
                "AF20010",
                f"The tenant ID passed in the URL ({tenant}) does not match the tenant ID passed in the "
                f"access token ({self.config.tenant_id}).",
            )
        fault = self._faults.next_call()
        if fault is not None:
            if fault.kind == "throttle":
                return af_error(
                    403, "AF429", f"Too many requests. Method={request.method}, PublisherId={publisher or ''}"
                )
            if fault.status == 500:
                return af_error(500, "AF50000", "An internal error occurred. Retry the request.")
            code = "ServiceUnavailable" if fault.status == 503 else "GatewayTimeout"
            return af_error(fault.status, code, "The service is temporarily unavailable. Retry the request.")
        return handler(request)

    def _content_type_param(self, request: ApiRequest) -> tuple[str | None, Response | None]:
        value = request.param("contentType")
        if not value:
            return None, af_error(400, "AF20001", "Missing parameter: contentType.")
        for content_type in CONTENT_TYPES:
            if content_type.lower() == value.lower():
                return content_type, None
        return None, af_error(400, "AF20020", "The specified content type is not valid.")

    def _subscription_start(self, request: ApiRequest) -> Response:
        content_type, error = self._content_type_param(request)
        if error is not None or content_type is None:
            return error or af_error(400, "AF20020", "The specified content type is not valid.")
        webhook: Any = None
        if request.body.strip():
            try:
                document = json.loads(request.body)
            except ValueError:
                return af_error(400, "AF20002", "Invalid parameter type: webhook. Expected type: object")
            webhook = document.get("webhook") if isinstance(document, dict) else None
        with self._lock:
            current = self._subscriptions.get(content_type)
            if current is not None and current["status"] == "enabled" and current["webhook"] == webhook:
                return af_error(
                    400,
                    "AF20024",
                    "The subscription is already enabled and the input parameters are the same.",
                )
            subscription = {"contentType": content_type, "status": "enabled", "webhook": webhook}
            self._subscriptions[content_type] = subscription
        return json_response(200, dict(subscription))

    def _subscription_stop(self, request: ApiRequest) -> Response:
        content_type, error = self._content_type_param(request)
        if error is not None or content_type is None:
            return error or af_error(400, "AF20020", "The specified content type is not valid.")
        with self._lock:
            current = self._subscriptions.get(content_type)
            if current is None or current["status"] != "enabled":
                return af_error(400, "AF20022", "No subscription found for the specified content type")
            current["status"] = "disabled"
        return Response(200)

    def _subscription_list(self, request: ApiRequest) -> Response:
        with self._lock:
            listing = [dict(s) for s in self._subscriptions.values()]
        return json_response(200, listing)

    def _content_list(self, request: ApiRequest) -> Response:
        content_type, error = self._content_type_param(request)
        if error is not None or content_type is None:
            return error or af_error(400, "AF20020", "The specified content type is not valid.")
        with self._lock:
            subscription = self._subscriptions.get(content_type)
            enabled = subscription is not None and subscription["status"] == "enabled"
        if not enabled:
            return af_error(400, "AF20022", "No subscription found for the specified content type")
        next_page = request.param("nextPage")
        now_us = request.now_us()
        if next_page is not None:
            try:
                state = self._page_tokens.decode(next_page)
                if state.get("ct") != content_type:
                    raise ODataError("content type mismatch")
                lo, hi, offset, snapshot = (
                    int(state["lo"]),
                    int(state["hi"]),
                    int(state["offset"]),
                    int(state["snap"]),
                )
            except (ODataError, KeyError, TypeError, ValueError):
                return af_error(400, "AF20031", f"Invalid nextPage Input: {next_page}.")
        else:
            start_text, end_text = request.param("startTime"), request.param("endTime")
            if (start_text is None) != (end_text is None):
                return af_error(400, "AF20030", AF20030)
            if start_text is None or end_text is None:
                lo, hi = now_us - MANAGEMENT_MAX_WINDOW_US, now_us
            else:
                try:
                    lo, _ = parse_time(start_text, require_zone=False)
                    hi, _ = parse_time(end_text, require_zone=False)
                except TimeParseError:
                    return af_error(400, "AF20030", AF20030)
                if hi < lo or hi - lo > MANAGEMENT_MAX_WINDOW_US or lo < now_us - MANAGEMENT_MAX_LOOKBACK_US:
                    return af_error(400, "AF20030", AF20030)
            offset, snapshot = 0, now_us
        blobs = self._tenant.blobs_created(content_type, lo, hi, snapshot)
        blobs = [b for b in blobs if self.content_faults.listed(b.content_id)]  # late-listed ones held back
        listing_key = f"{content_type}:{lo}:{hi}:{snapshot}"
        duplicate = self._faults.duplicate_boundary(listing_key, offset)
        start, end = page_bounds(len(blobs), offset, MANAGEMENT_PAGE_SIZE, duplicate)
        base = f"{request.base_url}/manage/api/v1.0/{self.config.tenant_id}/activity/feed"
        listing = [
            {
                "contentType": blob.content_type,
                "contentId": blob.content_id,
                "contentUri": f"{base}/audit/{blob.content_id}",
                "contentCreated": content_time(blob.created_us),
                "contentExpiration": content_time(blob.expires_us),
            }
            for blob in blobs[start:end]
        ]
        response = json_response(200, listing)
        if end < len(blobs):
            token = self._page_tokens.encode(
                {"ct": content_type, "lo": lo, "hi": hi, "offset": end, "snap": snapshot}
            )
            # Like the real service, the NextPageUri carries no PublisherIdentifier: callers add it.
            next_uri = (
                f"{base}/subscriptions/content?contentType={content_type}"
                f"&startTime={quote_query_value(content_time(lo))}&endTime={quote_query_value(content_time(hi))}&nextPage={token}"
            )
            response.headers.append(("NextPageUri", next_uri))
        return response

    def _content_blob(self, request: ApiRequest, content_id: str) -> Response:
        blob = self._tenant.blob_by_id.get(content_id)
        now_us = request.now_us()
        if blob is None or blob.created_us > now_us:
            return af_error(400, "AF20050", f"The specified content ({content_id}) does not exist.")
        if blob.expires_us < now_us:
            return af_error(
                400,
                "AF20051",
                f"Content requested with the key {content_id} has already expired. Content older than 7 days "
                "cannot be retrieved.",
            )
        fault = self.content_faults.take(content_id)
        if fault == "not_found":
            return af_error(404, "AF20050", f"The specified content ({content_id}) does not exist.")
        if fault == "invalid_id":
            return af_error(400, "AF20052", f"Content ID {content_id} in the URL is invalid.")
        if fault == "not_json":
            page = b"<html><body><h1>Service Unavailable</h1></body></html>"
            return Response(200, page, [("Content-Type", "text/html; charset=utf-8")])
        ctx = self._tenant.render_context
        records = self._tenant.records
        return json_response(200, [render(records[i], ctx) for i in blob.records])

    # ------------------------------------------------------------------------------------------
    # Control: published blobs, scripted content faults and late listings (/_sim/management/...)
    # ------------------------------------------------------------------------------------------
    def blobs(self, now_us: int) -> list[dict[str, Any]]:
        """Every blob published by `now_us`, oldest first: content type, id, times, its records' truth ids."""
        records = self._tenant.records
        blobs = sorted(self._tenant.blob_by_id.values(), key=lambda b: (b.created_us, b.content_id))
        return [
            {
                "content_type": blob.content_type,
                "content_id": blob.content_id,
                "content_created": content_time(blob.created_us),
                "content_expiration": content_time(blob.expires_us),
                "ids": [records[i].truth_id for i in blob.records if not records[i].malformed],
                "records": len(blob.records),
            }
            for blob in blobs
            if blob.created_us <= now_us
        ]

    def _known_blob(self, document: dict[str, Any]) -> str:
        content_id = document.get("content_id")
        if not isinstance(content_id, str) or content_id not in self._tenant.blob_by_id:
            raise ValueError("content_id must name a content blob of this tenant")
        return content_id

    def content_fault_document(self, document: dict[str, Any]) -> dict[str, Any]:
        """Script a blob's fault from a control body {"content_id", "kind", "times"?}; the summary."""
        unknown = set(document) - {"content_id", "kind", "times"}
        if unknown or "kind" not in document:
            raise ValueError('the body must be {"content_id", "kind": "not_found" | "invalid_id" | '
                             '"not_json" | null, "times"?: n}')  # fmt: skip
        self.content_faults.script(self._known_blob(document), document["kind"], document.get("times"))
        return self.content_faults.summary()

    def listing_hold_document(self, document: dict[str, Any]) -> dict[str, Any]:
        """Hold a blob out of listings, or release it, from a control body {"content_id", "held"}."""
        if set(document) != {"content_id", "held"} or not isinstance(document["held"], bool):
            raise ValueError('the body must be {"content_id", "held": true | false}')
        self.content_faults.hold(self._known_blob(document), document["held"])
        return self.content_faults.summary()
