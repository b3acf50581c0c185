"""Microsoft Graph under /graph: the audit log listings and `directoryObjects/getByIds`.

- `GET /graph/v1.0/auditLogs/directoryAudits`, `auditLogs/signIns`, `deviceManagement/auditEvents`:
  `$filter` on the time field, `$top`, newest first, `@odata.nextLink` with an opaque `$skiptoken`
  that snapshots the listing (sim time and tenant revision), so bursts added while paging never shift
  a listing's later pages.
- `POST /graph/v1.0/directoryObjects/getByIds`.
- `GET /graph/v1.0/servicePrincipals?$filter=appId in ('…','…')` (or `appId eq '…'`), at most 15 values
  in `in` as Graph allows, with `$select`.
- Applications, service principals (delta, reads, PATCH of notes), users and `$batch`: `AppsApi`
  (apps_routes.py), reached through `GraphApi.apps` after the same authorization and fault draw.

Calls need a Graph token (`IdentityApi`) and take part in the seeded faults (`FaultPlan`): 429 with
or without `Retry-After`, 500/503/504, and a page repeating the previous page's last item.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devtools.simulator.directory import graph_type_name, to_graph
from devtools.simulator.faults import Fault, FaultPlan, page_bounds
from devtools.simulator.generator import GRAPH_SOURCES, Tenant
from devtools.simulator.identity import IdentityApi
from devtools.simulator.odata import ODataError, PageTokens, parse_time_filter, parse_top
from devtools.simulator.render import ENTRA_AUDIT, ENTRA_SIGNIN, INTUNE_AUDIT, render
from devtools.simulator.responses import Response, json_response
from devtools.simulator.routing import ApiRequest, quote_query_value

if TYPE_CHECKING:
    from devtools.simulator.apps_routes import AppsApi

GRAPH_JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
MAX_GET_BY_IDS = 1000
MAX_IN_VALUES = 15
_APP_ID_FILTER = re.compile(r"^\s*appId\s+(?:eq\s+'([^']*)'|in\s*\(([^)]*)\))\s*$", re.IGNORECASE)
GET_BY_IDS_TYPES = {
    "user",
    "group",
    "serviceprincipal",
    "device",
    "application",
    "directoryrole",
    "orgcontact",
    "administrativeunit",
}


@dataclass(frozen=True)
class GraphList:
    """One audit log listing: its record source, path, time field and page sizes."""

    source: str
    path: str  # as in @odata.context, e.g. auditLogs/directoryAudits
    time_field: str
    default_top: int
    max_top: int


# Page sizes: signIns documents "the maximum and default page size is 1,000 objects". directoryAudits
# and Intune auditEvents document $top without a maximum; Graph's reporting APIs cap page sizes at
# 1,000 ("Must be between 1 and 1000 inclusive"), which the simulator applies to both.
GRAPH_LISTS: dict[str, GraphList] = {
    "auditlogs/directoryaudits": GraphList(
        ENTRA_AUDIT, "auditLogs/directoryAudits", "activityDateTime", 100, 1000
    ),
    "auditlogs/signins": GraphList(ENTRA_SIGNIN, "auditLogs/signIns", "createdDateTime", 1000, 1000),
    "devicemanagement/auditevents": GraphList(
        INTUNE_AUDIT, "deviceManagement/auditEvents", "activityDateTime", 100, 1000
    ),
}
assert {g.source for g in GRAPH_LISTS.values()} == set(GRAPH_SOURCES)


def graph_error(request: ApiRequest, status: int, code: str, message: str, **headers: str) -> Response:
    """A Graph error document, echoing the caller's client-request-id."""
    client_request_id = request.header("client-request-id") or str(uuid.uuid4())
    document = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": client_request_id,
            },
        }
    }
    return json_response(status, document, GRAPH_JSON_TYPE, **headers)


class GraphApi:
    """The Graph router: authorization, faults, audit listings and getByIds over the tenant's records."""

    def __init__(
        self, tenant: Tenant, identity: IdentityApi, faults: FaultPlan, page_tokens: PageTokens
    ) -> None:
        self._tenant = tenant
        self._identity = identity
        self._faults = faults
        self._page_tokens = page_tokens
        self.apps: AppsApi | None = None  # set by SimulatorApp: the routes of apps_routes.py

    def route(self, request: ApiRequest, segments: list[str]) -> Response:
        lowered = [x.lower() for x in segments]
        if lowered[:1] != ["v1.0"]:
            return graph_error(request, 400, "BadRequest", f"Invalid version: {'/'.join(lowered[:1])}")
        resource = "/".join(lowered[1:])
        handler: Callable[[ApiRequest], Response] | None
        resolved = None if self.apps is None else self.apps.resolve(lowered[1:], segments[1:])
        methods: tuple[str, ...]
        if resource in GRAPH_LISTS:
            spec = GRAPH_LISTS[resource]
            methods = ("GET",)
            handler = functools.partial(self._list, spec=spec)
        elif resource == "directoryobjects/getbyids":
            methods = ("POST",)
            handler = self._get_by_ids
        elif resource == "serviceprincipals":
            methods = ("GET",)
            handler = self._service_principals
        elif resolved is not None:
            methods, handler = resolved
        else:
            return graph_error(
                request,
                400,
                "BadRequest",
                f"Resource not found for the segment '{lowered[-1] if lowered else ''}'.",
            )
        if request.method not in methods:
            return graph_error(request, 405, "Request_BadRequest", "Specified HTTP method is not allowed.")
        reason = self._identity.check_token(request, "graph")
        if reason is not None:
            return graph_error(
                request,
                401,
                "InvalidAuthenticationToken",
                reason,
                WWW_Authenticate='Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
                'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
            )
        request.entry["authorized"] = True
        fault = self._faults.next_call()
        if fault is not None:
            return _fault_response(request, fault)
        response = handler(request)
        client_request_id = request.header("client-request-id")
        response.headers.append(("request-id", str(uuid.uuid4())))
        if client_request_id:
            response.headers.append(("client-request-id", client_request_id))
        return response

    def _list(self, request: ApiRequest, spec: GraphList) -> Response:
        skiptoken = request.param("$skiptoken")
        try:
            if skiptoken is not None:
                state = self._page_tokens.decode(skiptoken)
                if state.get("api") != spec.source:
                    raise ODataError("Invalid skip token.")
                lo, hi, top, offset, snapshot, revision = (
                    state["lo"],
                    state["hi"],
                    int(state["top"]),
                    int(state["offset"]),
                    int(state["snap"]),
                    int(state["rev"]),
                )
            else:
                time_range = parse_time_filter(request.param("$filter"), spec.time_field)
                lo, hi = time_range.lo, time_range.hi
                top = parse_top(request.param("$top"), spec.default_top, spec.max_top)
                # A listing is a snapshot of (sim time, tenant revision): bursts added later are not in it.
                offset, revision, snapshot = 0, self._tenant.revision, request.now_us()
        except (ODataError, KeyError, TypeError, ValueError) as exc:
            message = str(exc) if isinstance(exc, ODataError) else "Invalid skip token."
            return graph_error(request, 400, "BadRequest", message)
        records = self._tenant.graph_visible(spec.source, lo, hi, snapshot, revision)
        listing_key = f"{spec.source}:{lo}:{hi}:{snapshot}:{top}"
        duplicate = self._faults.duplicate_boundary(listing_key, offset)
        start, end = page_bounds(len(records), offset, top, duplicate)
        ctx = self._tenant.render_context
        document: dict[str, Any] = {
            "@odata.context": f"{request.base_url}/graph/v1.0/$metadata#{spec.path}",
            "value": [render(r, ctx) for r in records[start:end]],
        }
        if end < len(records):
            token = self._page_tokens.encode(
                {
                    "api": spec.source,
                    "lo": lo,
                    "hi": hi,
                    "top": top,
                    "offset": end,
                    "snap": snapshot,
                    "rev": revision,
                }
            )
            kept = [(k, v) for k, v in request.query.items() if k.lower() != "$skiptoken"]
            query = "&".join(f"{quote_query_value(k)}={quote_query_value(v)}" for k, v in kept)
            query = f"{query}&$skiptoken={token}" if query else f"$skiptoken={token}"
            document["@odata.nextLink"] = f"{request.base_url}/graph/v1.0/{spec.path}?{query}"
        return json_response(200, document, GRAPH_JSON_TYPE)

    def _get_by_ids(self, request: ApiRequest) -> Response:
        try:
            document = json.loads(request.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            return graph_error(request, 400, "BadRequest", "Unable to read JSON request payload.")
        ids = document.get("ids") if isinstance(document, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return graph_error(
                request, 400, "Request_BadRequest", "Invalid request: 'ids' must be an array of strings."
            )
        if len(ids) > MAX_GET_BY_IDS:
            return graph_error(
                request,
                400,
                "Request_BadRequest",
                f"Too many ids specified: {len(ids)}. The maximum is {MAX_GET_BY_IDS}.",
            )
        raw_types = document.get("types") or []
        if not isinstance(raw_types, list) or not all(isinstance(t, str) for t in raw_types):
            return graph_error(
                request, 400, "Request_BadRequest", "Invalid request: 'types' must be an array of strings."
            )
        types = {t.lower().removeprefix("#").removeprefix("microsoft.graph.") for t in raw_types}
        unknown = types - GET_BY_IDS_TYPES
        if unknown:
            return graph_error(
                request, 400, "Request_BadRequest", f"Invalid object type(s): {', '.join(sorted(unknown))}."
            )
        values: list[dict[str, Any]] = []
        seen: set[str] = set()
        for object_id in ids:
            obj = self._tenant.directory.get(object_id)
            if obj is None or obj.id in seen:
                continue
            if types and graph_type_name(obj).lower() not in types:
                continue
            seen.add(obj.id)
            values.append(to_graph(obj))
        return json_response(
            200,
            {"@odata.context": f"{request.base_url}/graph/v1.0/$metadata#directoryObjects", "value": values},
            GRAPH_JSON_TYPE,
        )

    def _service_principals(self, request: ApiRequest) -> Response:
        """Only the appId filter enrichment sends; anything else is refused like an unsupported query."""
        match = _APP_ID_FILTER.match(request.param("$filter") or "")
        if match is None:
            return graph_error(request, 400, "Request_UnsupportedQuery", "Unsupported query.")
        if match.group(1) is not None:
            app_ids = [match.group(1)]
        else:
            app_ids = [value.strip().strip("'") for value in match.group(2).split(",") if value.strip()]
        if len(app_ids) > MAX_IN_VALUES:
            return graph_error(
                request,
                400,
                "Request_UnsupportedQuery",
                f"Too many child clauses specified in search filter expression containing 'OR' operators: "
                f"{len(app_ids)}. Max allowed: {MAX_IN_VALUES}.",
            )
        wanted = {app_id.lower() for app_id in app_ids}
        select = request.param("$select")
        values = [
            _selected(to_graph(principal), select)
            for principal in self._tenant.directory.service_principals
            if principal.app_id.lower() in wanted
        ]
        return json_response(
            200,
            {"@odata.context": f"{request.base_url}/graph/v1.0/$metadata#servicePrincipals", "value": values},
            GRAPH_JSON_TYPE,
        )


def _selected(document: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return document
    wanted = {name.strip().lower() for name in select.split(",")}
    return {key: value for key, value in document.items() if key.lower() in wanted or key.startswith("@")}


def _fault_response(request: ApiRequest, fault: Fault) -> Response:
    if fault.kind == "throttle":
        headers = {} if fault.retry_after is None else {"Retry_After": str(fault.retry_after)}
        return graph_error(
            request,
            429,
            "TooManyRequests",
            "Too many requests from Identifier under tenant. Please retry after some time.",
            **headers,
        )
    code = {500: "generalException", 503: "serviceNotAvailable", 504: "timeout"}[fault.status]
    message = {
        500: "An unspecified error has occurred.",
        503: "The service is not available. Try the request again after a delay.",
        504: "The operation timed out before it could be completed.",
    }[fault.status]
    return graph_error(request, fault.status, code, message)
