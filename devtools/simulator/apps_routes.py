"""Microsoft Graph routes over the tenant's applications and service principals, JSON batching, and the
/_sim/apps controls that change them. `GraphApi` hands these paths here after authorizing the call and
drawing its fault (so 429 with Retry-After and 5xx answers apply as to every Graph call).

Graph v1.0 routes (the shapes of Graph's docs for each API):
- `GET /servicePrincipals/delta`, `GET /applications/delta` (also `/microsoft.graph.delta`): a round of
  pages of 200 objects linked by `@odata.nextLink` (`$skiptoken`), ending with `@odata.deltaLink`
  (`$deltatoken`). The first round lists every object, deleted ones as `{"id", "@removed": {"reason":
  "changed"}}`; a round from a deltaLink lists the objects whose *properties* changed since, in their
  state when the round started (owners, app role assignments and memberships are navigation properties:
  delta never reports them, as in Graph). `$select` is kept in the tokens (the `id` always comes back; a
  change to a property outside the selection is not reported); `$filter=id eq '...' (or id eq '...')`
  tracks given objects; `$top` is ignored as Graph does for directory delta. A delta or skip token that
  is older than 7 days (sim time), issued before a synchronization reset (`POST /_sim/apps/delta-reset`)
  or not one the simulator issued answers **410 Gone**, code `syncStateNotFound`, with a `Location`
  header holding the round's initial request. `duplicate_across_pages_rate` replays an item across pages.
- `GET /servicePrincipals/{id}`, `/servicePrincipals(appId='{appId}')`, their `/owners`,
  `/appRoleAssignments` and `/memberOf` (directoryRole and group objects); `GET /applications/{id}`,
  `/applications(appId='{appId}')`, `/applications/{id}/owners`; `GET /users/{id or userPrincipalName}`.
  `$select` everywhere (an unknown property is a 400); `keyCredentials` carry their `key` only when
  selected. A deleted or unknown object is 404 `Request_ResourceNotFound`; an id that is not a GUID is 400.
- `PATCH /servicePrincipals/{id}` with `{"notes": "..." | null}` answers 204 No Content. Any other
  property is refused with 400 and nothing is written (the governance app may only write notes). Every
  PATCH is recorded (`GET /_sim/apps/writes`); a changed value is a delta change and an "Update service
  principal" audit record, the same value is neither.
- `POST /$batch`: JSON batching, 1 to 20 requests (`id`, `method`, relative `url`, optional `headers`,
  `body`, `dependsOn`), each answered as its own call would be (`id`, `status`, `headers`, `body`),
  in request order; a request whose dependency failed is 424. Every request of a batch draws its own
  fault, so one can be 429 with Retry-After inside a 200 batch, as Graph does.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from devtools.simulator.apps import (
    APPLICATIONS,
    DEFAULT_USER_PROPERTIES,
    SERVICE_PRINCIPALS,
    AppRoleAssignment,
    AppsState,
    AppState,
    DirectoryRole,
    Mutation,
    SpState,
    UserState,
)
from devtools.simulator.config import SimulatorConfig
from devtools.simulator.directory import to_graph
from devtools.simulator.faults import FaultPlan, page_bounds
from devtools.simulator.generator import Tenant
from devtools.simulator.graph import GRAPH_JSON_TYPE, graph_error
from devtools.simulator.identity import IdentityApi
from devtools.simulator.odata import ODataError, PageTokens
from devtools.simulator.responses import Response, json_response
from devtools.simulator.routing import ApiRequest
from devtools.simulator.timefmt import US_PER_SECOND, graph_time, parse_time, to_us

DELTA_PAGE_SIZE = 200  # Graph's page of directory delta (users/delta and the like send 200)
DELTA_TOKEN_LIFETIME_US = (
    7 * 86_400 * US_PER_SECOND
)  # Graph: "For directory objects, the limit is seven days"
MAX_BATCH_REQUESTS = 20
SYNC_STATE_NOT_FOUND = (
    "The sync state generation is not found. The delta token is expired and data must be synchronized again."
)
_ENTITY_KEY = re.compile(r"^(serviceprincipals|applications)\(appid='([^']*)'\)$", re.IGNORECASE)
_ID_CLAUSE = re.compile(r"^\s*id\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_DELTA = ("delta", "microsoft.graph.delta")
_TYPE = {SERVICE_PRINCIPALS: "servicePrincipal", APPLICATIONS: "application"}

Handler = Callable[[ApiRequest], Response]
Dispatch = Callable[[ApiRequest, list[str]], Response]


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def _not_found(request: ApiRequest, ref: str) -> Response:
    return graph_error(
        request,
        404,
        "Request_ResourceNotFound",
        f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present.",
    )


def _bad_id(request: ApiRequest, ref: str) -> Response:
    return graph_error(request, 400, "Request_BadRequest", f"Invalid object identifier '{ref}'.")


def _parse_select(request: ApiRequest, properties: Sequence[str], type_name: str) -> list[str] | None:
    """The $select names in canonical case, or None without $select; ODataError for an unknown name."""
    text = request.param("$select")
    if text is None or not text.strip():
        return None
    canonical = {name.lower(): name for name in properties}
    selected: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        found = canonical.get(name.lower())
        if found is None:
            raise ODataError(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
            )
        if found not in selected:
            selected.append(found)
    return selected or None


def _selected(document: dict[str, Any], select: list[str] | None, keep: Sequence[str] = ()) -> dict[str, Any]:
    if select is None:
        return document
    return {key: value for key, value in document.items() if key in select or key in keep}


def _context(request: ApiRequest, path: str, select: list[str] | None, suffix: str = "") -> str:
    selection = f"({','.join(select)})" if select else ""
    return f"{request.base_url}/graph/v1.0/$metadata#{path}{selection}{suffix}"


_SP_PROPERTIES = tuple(SpState("", "", "", "resource", "", None, None).to_graph())
_APP_PROPERTIES = tuple(AppState("", "", "", 0, "", "", "").to_graph())
_USER_PROPERTIES = tuple(UserState("", "", "", "", None, True, "Member", 0).to_graph())
_ASSIGNMENT_PROPERTIES = (
    "id",
    "deletedDateTime",
    "appRoleId",
    "createdDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
)


class AppsApi:
    """Graph routes and /_sim/apps controls over one lazily built `AppsState`."""

    def __init__(
        self,
        config: SimulatorConfig,
        tenant: Tenant,
        identity: IdentityApi,
        faults: FaultPlan,
        page_tokens: PageTokens,
        now_us: Callable[[], int],
    ) -> None:
        self._config = config
        self._tenant = tenant
        self._identity = identity
        self._faults = faults
        self._tokens = page_tokens
        self._now_us = now_us
        self._state: AppsState | None = None
        self._build_lock = threading.Lock()
        self.dispatch: Dispatch | None = (
            None  # the Graph router, set by the app: $batch sends its requests there
        )

    def state(self) -> AppsState:
        """The tenant's applications and service principals, generated on first use."""
        if self._state is None:
            with self._build_lock:
                if self._state is None:
                    self._state = AppsState(
                        seed=self._config.seed,
                        tenant_id=self._config.tenant_id,
                        directory=self._tenant.directory,
                        size=self._config.service_principals,
                        anchor_us=_anchor_us(self._config),
                    )
        return self._state

    # ------------------------------------------------------------------------------------------
    # Graph routes
    # ------------------------------------------------------------------------------------------
    def resolve(self, lowered: list[str], raw: list[str]) -> tuple[tuple[str, ...], Handler] | None:
        """(allowed methods, handler) for a Graph path after /v1.0, or None when it is not one of ours."""
        if not lowered:
            return None
        partial = functools.partial
        if lowered == ["$batch"]:
            return ("POST",), self._batch
        keyed = _ENTITY_KEY.match(raw[0])
        if keyed is not None:
            resource = SERVICE_PRINCIPALS if keyed.group(1).lower() == "serviceprincipals" else APPLICATIONS
            app_id = keyed.group(2)
            if len(lowered) == 1:
                return ("GET",), partial(self._get, resource=resource, ref=app_id, by_app_id=True)
            if len(lowered) == 2:
                return self._navigation(resource, app_id, lowered[1], by_app_id=True)
            return None
        head = lowered[0]
        if head in ("serviceprincipals", "applications"):
            resource = SERVICE_PRINCIPALS if head == "serviceprincipals" else APPLICATIONS
            if len(lowered) == 2 and lowered[1] in _DELTA:
                return ("GET",), partial(self._delta, resource=resource)
            if len(lowered) == 2:
                methods = ("GET", "PATCH") if resource == SERVICE_PRINCIPALS else ("GET",)
                return methods, partial(self._object, resource=resource, ref=raw[1])
            if len(lowered) == 3:
                return self._navigation(resource, raw[1], lowered[2], by_app_id=False)
            return None
        if head == "users" and len(lowered) == 2:
            return ("GET",), partial(self._user, ref=raw[1])
        return None

    def _navigation(
        self, resource: str, ref: str, name: str, *, by_app_id: bool
    ) -> tuple[tuple[str, ...], Handler] | None:
        partial = functools.partial
        if name == "owners":
            return ("GET",), partial(self._owners, resource=resource, ref=ref, by_app_id=by_app_id)
        if resource == SERVICE_PRINCIPALS and name == "approleassignments":
            return ("GET",), partial(self._assignments, ref=ref, by_app_id=by_app_id)
        if resource == SERVICE_PRINCIPALS and name == "memberof":
            return ("GET",), partial(self._member_of, ref=ref, by_app_id=by_app_id)
        return None

    def _lookup(self, request: ApiRequest, resource: str, ref: str, by_app_id: bool) -> Any:
        """The live object, or the error Response to send."""
        if not _is_guid(ref):
            return _bad_id(request, ref)
        state = self.state()
        found = state.find_by_app_id(resource, ref) if by_app_id else state.find(resource, ref)
        return _not_found(request, ref) if found is None else found

    def _object(self, request: ApiRequest, resource: str, ref: str) -> Response:
        if request.method == "PATCH":
            return self._patch(request, ref)
        return self._get(request, resource, ref, by_app_id=False)

    def _get(self, request: ApiRequest, resource: str, ref: str, by_app_id: bool) -> Response:
        found = self._lookup(request, resource, ref, by_app_id)
        if isinstance(found, Response):
            return found
        document = found.to_graph()
        try:
            select = _parse_select(request, tuple(document), _TYPE[resource])
        except ODataError as exc:
            return graph_error(request, 400, "Request_BadRequest", str(exc))
        if select is not None and "keyCredentials" in select:
            document = found.to_graph(with_keys=True)
        body = {
            "@odata.context": _context(request, resource, select, "/$entity"),
            **_selected(document, select),
        }
        return json_response(200, body, GRAPH_JSON_TYPE)

    def _patch(self, request: ApiRequest, ref: str) -> Response:
        if not _is_guid(ref):
            return _bad_id(request, ref)
        try:
            body: Any = json.loads(request.body.decode("utf-8")) if request.body.strip() else None
        except (UnicodeDecodeError, ValueError):
            return graph_error(
                request,
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload "
                "is of valid JSON format.",
            )
        header = request.header("Authorization") or ""
        client_id = self._identity.bearer_identity(header.partition(" ")[2], "graph")
        status, error, mutation = self.state().patch_service_principal(
            ref, body, client_id=client_id, now_us=request.now_us()
        )
        if mutation is not None:
            self._emit(mutation)
        if status == 204:
            return Response(204)
        code = "Request_ResourceNotFound" if status == 404 else "Request_BadRequest"
        return graph_error(request, status, code, error or "Bad request.")

    def _owners(self, request: ApiRequest, resource: str, ref: str, by_app_id: bool) -> Response:
        found = self._lookup(request, resource, ref, by_app_id)
        if isinstance(found, Response):
            return found
        try:
            select = _parse_select(request, (*_USER_PROPERTIES, *_SP_PROPERTIES), "directoryObject")
        except ODataError as exc:
            return graph_error(request, 400, "Request_BadRequest", str(exc))
        values = []
        for owner in self.state().owners_of(found.id):
            if isinstance(owner, UserState):
                odata_type, document = "#microsoft.graph.user", owner.to_graph()
                default: Sequence[str] = DEFAULT_USER_PROPERTIES
            else:
                odata_type, document = "#microsoft.graph.servicePrincipal", owner.to_graph()
                default = tuple(document)
            keep = select if select is not None else default
            values.append({"@odata.type": odata_type, **{k: v for k, v in document.items() if k in keep}})
        body = {"@odata.context": _context(request, "directoryObjects", select), "value": values}
        return json_response(200, body, GRAPH_JSON_TYPE)

    def _assignments(self, request: ApiRequest, ref: str, by_app_id: bool) -> Response:
        found = self._lookup(request, SERVICE_PRINCIPALS, ref, by_app_id)
        if isinstance(found, Response):
            return found
        try:
            select = _parse_select(request, _ASSIGNMENT_PROPERTIES, "appRoleAssignment")
        except ODataError as exc:
            return graph_error(request, 400, "Request_BadRequest", str(exc))
        state = self.state()
        values = []
        for assignment in state.assignments_of(found.id):
            resource = state.state_at(SERVICE_PRINCIPALS, assignment.resource_id, state.seq)
            values.append(_selected(_assignment_json(assignment, found, resource), select))
        path = f"servicePrincipals('{found.id}')/appRoleAssignments"
        body = {"@odata.context": _context(request, path, select), "value": values}
        return json_response(200, body, GRAPH_JSON_TYPE)

    def _member_of(self, request: ApiRequest, ref: str, by_app_id: bool) -> Response:
        found = self._lookup(request, SERVICE_PRINCIPALS, ref, by_app_id)
        if isinstance(found, Response):
            return found
        documents = []
        for membership in self.state().memberships_of(found.id):
            if isinstance(membership, DirectoryRole):
                documents.append(membership.to_graph())
            else:
                documents.append({**to_graph(membership), "deletedDateTime": None})
        properties = (
            "id",
            "deletedDateTime",
            "description",
            "displayName",
            "roleTemplateId",
            "groupTypes",
            "mail",
            "mailEnabled",
            "mailNickname",
            "securityEnabled",
        )
        try:
            select = _parse_select(request, properties, "directoryObject")
        except ODataError as exc:
            return graph_error(request, 400, "Request_BadRequest", str(exc))
        values = [_selected(d, select, keep=("@odata.type",)) for d in documents]
        body = {"@odata.context": _context(request, "directoryObjects", select), "value": values}
        return json_response(200, body, GRAPH_JSON_TYPE)

    def _user(self, request: ApiRequest, ref: str) -> Response:
        user = self.state().user(ref)
        if user is None:
            return _not_found(request, ref)
        try:
            select = _parse_select(request, _USER_PROPERTIES, "user")
        except ODataError as exc:
            return graph_error(request, 400, "Request_BadRequest", str(exc))
        document = user.to_graph()
        keep = select if select is not None else DEFAULT_USER_PROPERTIES
        body = {
            "@odata.context": _context(request, "users", select, "/$entity"),
            **{k: v for k, v in document.items() if k in keep},
        }
        return json_response(200, body, GRAPH_JSON_TYPE)

    # ------------------------------------------------------------------------------------------
    # Delta
    # ------------------------------------------------------------------------------------------
    def _delta(self, request: ApiRequest, resource: str) -> Response:
        state = self.state()
        api = f"delta:{resource}"
        now = request.now_us()
        delta_token = request.param("$deltatoken")
        skip_token = request.param("$skiptoken")
        token: dict[str, Any] | None = None
        if delta_token is not None or skip_token is not None:
            try:
                token = self._tokens.decode(delta_token if delta_token is not None else skip_token or "")
                # A deltaLink's token holds where the next round starts; a nextLink's, the page of a round.
                if token.get("api") != api or ("upto" in token) != (delta_token is None):
                    raise ODataError("not a token of this delta")
            except ODataError:
                return self._gone(request, resource, None, None)
            select = token.get("select")
            only = frozenset(token["only"]) if token.get("only") is not None else None
            if now - int(token["issued"]) > DELTA_TOKEN_LIFETIME_US or int(
                token["reset"]
            ) < state.reset_epoch(resource):
                return self._gone(request, resource, select, only)
        else:
            try:
                select = _parse_select(request, self._properties(resource), _TYPE[resource])
                only = _parse_id_filter(request.param("$filter"))
            except ODataError as exc:
                code = "Request_UnsupportedQuery" if "filter" in str(exc).lower() else "Request_BadRequest"
                return graph_error(request, 400, code, str(exc))
        if token is not None and delta_token is not None:
            since: int | None = int(token["since"])
            upto, offset = state.seq, 0
        elif token is not None:
            since = None if token.get("since") is None else int(token["since"])
            upto, offset = int(token["upto"]), int(token["offset"])
        else:
            since, upto, offset = None, state.seq, 0
        selected = None if select is None else frozenset(name.lower() for name in select)
        if since is None:
            ids = state.initial_ids(resource, upto, only)
        else:
            ids = state.changed_ids(resource, since, upto, selected, only)
        listing = f"{api}:{since}:{upto}:{select}"
        duplicate = self._faults.duplicate_boundary(listing, offset)
        start, end = page_bounds(len(ids), offset, DELTA_PAGE_SIZE, duplicate)
        values = [self._delta_item(state, resource, object_id, upto, select) for object_id in ids[start:end]]
        document: dict[str, Any] = {"@odata.context": _context(request, resource, select)}
        common = {
            "api": api,
            "select": select,
            "only": None if only is None else sorted(only),
            "issued": now,
            "reset": state.reset_epoch(resource),
        }
        if end < len(ids):
            next_token = self._tokens.encode({**common, "since": since, "upto": upto, "offset": end})
            document["@odata.nextLink"] = (
                f"{request.base_url}/graph/v1.0/{resource}/delta?$skiptoken={next_token}"
            )
        else:
            next_token = self._tokens.encode({**common, "since": upto})
            document["@odata.deltaLink"] = (
                f"{request.base_url}/graph/v1.0/{resource}/delta?$deltatoken={next_token}"
            )
        document["value"] = values
        request.entry["delta"] = {
            "resource": resource,
            "round": "initial" if since is None else "changes",
            "items": len(values),
        }
        return json_response(200, document, GRAPH_JSON_TYPE)

    @staticmethod
    def _properties(resource: str) -> tuple[str, ...]:
        return _SP_PROPERTIES if resource == SERVICE_PRINCIPALS else _APP_PROPERTIES

    @staticmethod
    def _delta_item(
        state: AppsState, resource: str, object_id: str, upto: int, select: list[str] | None
    ) -> dict[str, Any]:
        current = state.state_at(resource, object_id, upto)
        if current.deleted_us is not None:
            return {"id": object_id, "@removed": {"reason": "changed"}}
        document = current.to_graph(with_keys=select is not None and "keyCredentials" in select)
        return _selected(document, select, keep=("id",))

    def _gone(
        self, request: ApiRequest, resource: str, select: list[str] | None, only: frozenset[str] | None
    ) -> Response:
        query = []
        if select:
            query.append(f"$select={quote(','.join(select), safe=',')}")
        if only:
            clause = " or ".join(f"id eq '{object_id}'" for object_id in sorted(only))
            query.append(f"$filter={quote(clause, safe='')}")
        location = f"{request.base_url}/graph/v1.0/{resource}/delta" + (
            f"?{'&'.join(query)}" if query else ""
        )
        request.entry["delta"] = {"resource": resource, "round": "gone", "items": 0}
        return graph_error(request, 410, "syncStateNotFound", SYNC_STATE_NOT_FOUND, Location=location)

    # ------------------------------------------------------------------------------------------
    # JSON batching
    # ------------------------------------------------------------------------------------------
    def _batch(self, request: ApiRequest) -> Response:
        try:
            document = json.loads(request.body.decode("utf-8")) if request.body.strip() else None
        except (UnicodeDecodeError, ValueError):
            document = None
        items = document.get("requests") if isinstance(document, dict) else None
        if not isinstance(items, list) or not items:
            return graph_error(request, 400, "BadRequest", "Invalid batch payload format.")
        if len(items) > MAX_BATCH_REQUESTS:
            return graph_error(
                request,
                400,
                "BadRequest",
                f"Number of batch requests exceeds the limit of {MAX_BATCH_REQUESTS}.",
            )
        ids: list[str] = []
        for item in items:
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("id", "method", "url")
            ):
                return graph_error(request, 400, "BadRequest", "Invalid batch payload format.")
            if item["id"].lower() in ids:
                return graph_error(
                    request, 400, "BadRequest", f"Batch request ids must be unique: '{item['id']}'."
                )
            ids.append(item["id"].lower())
        for item in items:
            depends = item.get("dependsOn", [])
            if not isinstance(depends, list) or any(
                not isinstance(d, str) or d.lower() not in ids for d in depends
            ):
                return graph_error(
                    request, 400, "BadRequest", f"Invalid dependsOn in request '{item['id']}'."
                )
        statuses: dict[str, int] = {}
        responses: list[dict[str, Any]] = []
        log: list[dict[str, Any]] = []
        for item in items:
            if any(statuses.get(d.lower(), 424) >= 400 for d in item.get("dependsOn", [])):
                response = graph_error(request, 424, "FailedDependency", "A request it depends on failed.")
            else:
                response = self._inner(request, item)
            statuses[item["id"].lower()] = response.status
            answer: dict[str, Any] = {
                "id": item["id"],
                "status": response.status,
                "headers": dict(response.headers),
            }
            if response.body:
                answer["body"] = json.loads(response.body)
            responses.append(answer)
            log.append(
                {
                    "id": item["id"],
                    "method": item["method"].upper(),
                    "url": item["url"],
                    "status": response.status,
                }
            )
        request.entry["batch"] = log
        return json_response(200, {"responses": responses}, GRAPH_JSON_TYPE)

    def _inner(self, outer: ApiRequest, item: dict[str, Any]) -> Response:
        url = item["url"]
        if re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
            return graph_error(
                outer, 400, "BadRequest", "Invalid request URL: a batch request URL must be relative."
            )
        parts = urlsplit(url.lstrip("/"))
        path = unquote(parts.path)
        segments = [s for s in path.split("/") if s]
        if segments and segments[0].lower() == "$batch":
            return graph_error(outer, 400, "BadRequest", "A batch request cannot contain another batch.")
        headers = {
            k: v for k, v in outer.headers.items() if k.lower() in ("authorization", "client-request-id")
        }
        extra = item.get("headers") or {}
        if isinstance(extra, dict):
            headers.update({str(k): str(v) for k, v in extra.items()})
        raw_body = item.get("body")
        body = (
            b""
            if raw_body is None
            else (raw_body.encode() if isinstance(raw_body, str) else json.dumps(raw_body).encode())
        )
        inner = ApiRequest(
            method=item["method"].upper(),
            path=f"/graph/v1.0/{path}",
            segments=["graph", "v1.0", *segments],
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            entry={"batch_item": item["id"]},
            base_url=outer.base_url,
            now_us=outer.now_us,
        )
        if self.dispatch is None:
            raise RuntimeError("AppsApi.dispatch is not set")
        return self.dispatch(inner, ["v1.0", *segments])

    # ------------------------------------------------------------------------------------------
    # /_sim/apps controls
    # ------------------------------------------------------------------------------------------
    def _emit(self, mutation: Mutation) -> list[str]:
        return self._tenant.add_directory_audits(mutation.audits, self._now_us()) if mutation.audits else []

    def control(self, method: str, segments: list[str], body: bytes) -> Response:
        """Answer /_sim/apps/{segments}: reads (GET) and scripted changes (POST, a JSON object)."""
        route = "/".join(segments)
        state = self.state()
        if method == "GET":
            if route == "truth":
                return json_response(200, state.truth())
            if len(segments) == 2 and segments[0] == "truth":
                try:
                    return json_response(200, state.truth(segments[1]))
                except KeyError:
                    return json_response(404, {"error": f"no service principal {segments[1]!r}"})
            if route == "writes":
                return json_response(200, state.writes())
            if route == "changes":
                return json_response(200, {"seq": state.seq, "changes": state.changes()})
        posters: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "owners": self._control_owner,
            "credentials": self._control_credential,
            "permissions": self._control_permission,
            "notes": self._control_notes,
            "applications": self._control_create,
            "delete": self._control_delete,
            "users": self._control_user,
            "delta-reset": self._control_reset,
        }
        if route not in posters:
            known = route in ("truth", "writes", "changes") or (
                segments[:1] == ["truth"] and len(segments) == 2
            )
            if known:
                return json_response(405, {"error": f"{method} is not supported on /_sim/apps/{route}"})
            return json_response(404, {"error": "unknown control endpoint"})
        if method != "POST":
            return json_response(405, {"error": f"{method} is not supported on /_sim/apps/{route}"})
        try:
            document = json.loads(body.decode("utf-8")) if body.strip() else None
        except (UnicodeDecodeError, ValueError):
            document = None
        if not isinstance(document, dict):
            return json_response(400, {"error": "the body must be a JSON object"})
        try:
            return json_response(200, posters[route](document))
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})

    def _result(self, mutation: Mutation) -> dict[str, Any]:
        return {
            "seq": mutation.seq,
            "audit_ids": self._emit(mutation),
            "object": mutation.object_id,
            **mutation.details,
        }

    def _control_owner(self, document: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(document, required=("object", "owner", "action"), optional=("actor",))
        add = _choice(fields["action"], "action", {"add": True, "remove": False})
        state = self.state()
        return self._result(
            state.change_owner(
                _text(fields["object"], "object"),
                _text(fields["owner"], "owner"),
                add=add,
                actor=state.user_actor(_actor(fields)),
                now_us=self._now_us(),
            )
        )

    def _control_credential(self, document: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(
            document,
            required=("object",),
            optional=("action", "type", "display_name", "start", "end", "lifetime_days", "key_id", "actor"),
        )
        state = self.state()
        actor = state.user_actor(_actor(fields))
        ref = _text(fields["object"], "object")
        now = self._now_us()
        if fields.get("action", "add") == "remove":
            return self._result(
                state.remove_credential(ref, _text(fields.get("key_id"), "key_id"), actor=actor, now_us=now)
            )
        _choice(fields.get("action", "add"), "action", {"add": True})
        kind = _choice(
            fields.get("type", "password"), "type", {"password": "password", "certificate": "certificate"}
        )
        start = _time(fields["start"], "start") if fields.get("start") is not None else now
        if fields.get("end") is not None:
            end = _time(fields["end"], "end")
        else:
            default_days = 180 if kind == "password" else 365
            days = fields.get("lifetime_days", default_days)
            if isinstance(days, bool) or not isinstance(days, int | float) or days <= 0:
                raise ValueError(f"lifetime_days must be a positive number, got {days!r}")
            end = start + int(days * 86_400 * US_PER_SECOND)
        display_name = fields.get("display_name")
        if display_name is not None and not isinstance(display_name, str):
            raise ValueError("display_name must be a string")
        return self._result(
            state.add_credential(
                ref, kind=kind, start_us=start, end_us=end, display_name=display_name, actor=actor, now_us=now
            )
        )

    def _control_permission(self, document: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(document, required=("object", "permission"), optional=("action", "consent", "actor"))
        grant = _choice(fields.get("action", "grant"), "action", {"grant": True, "revoke": False})
        consent = fields.get("consent", True)
        if not isinstance(consent, bool):
            raise ValueError("consent must be true or false")
        state = self.state()
        return self._result(
            state.change_permission(
                _text(fields["object"], "object"),
                _text(fields["permission"], "permission"),
                grant=grant,
                consent=consent,
                actor=state.user_actor(_actor(fields)),
                now_us=self._now_us(),
            )
        )

    def _control_notes(self, document: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(document, required=("object", "notes"), optional=("actor",))
        state = self.state()
        return self._result(
            state.set_notes(
                _text(fields["object"], "object"),
                fields["notes"],
                actor=state.user_actor(_actor(fields)),
                now_us=self._now_us(),
            )
        )

    def _control_create(self, document: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(
            document, required=("display_name",), optional=("owners", "sign_in_audience", "actor")
        )
        owners = fields.get("owners", [])
        if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
            raise ValueError("owners must be a list of user ids or user principal names")
        state = self.state()
        return self._result(
            state.create_application(
                fields["display_name"],
                owners=owners,
                sign_in_audience=fields.get("sign_in_audience", "AzureADMyOrg"),
                actor=state.user_actor(_actor(fields)),
                now_us=self._now_us(),
            )
        )

    def _control_delete(self, document: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(document, required=("object",), optional=("actor",))
        state = self.state()
        return self._result(
            state.delete(
                _text(fields["object"], "object"),
                actor=state.user_actor(_actor(fields)),
                now_us=self._now_us(),
            )
        )

    def _control_user(self, document: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(document, required=("user", "account_enabled"), optional=("actor",))
        state = self.state()
        return self._result(
            state.set_user_enabled(
                _text(fields["user"], "user"),
                fields["account_enabled"],
                actor=state.user_actor(_actor(fields)),
                now_us=self._now_us(),
            )
        )

    def _control_reset(self, document: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(document, required=(), optional=("resource",))
        resource = fields.get("resource")
        if resource is None:
            resources: tuple[str, ...] = (SERVICE_PRINCIPALS, APPLICATIONS)
        else:
            resources = (
                _choice(
                    resource, "resource", {SERVICE_PRINCIPALS: SERVICE_PRINCIPALS, APPLICATIONS: APPLICATIONS}
                ),
            )
        return {"reset_epochs": self.state().reset_delta(resources)}


def _anchor_us(config: SimulatorConfig) -> int:
    """Credential dates are drawn around epoch + 1 day (the end of the simulated day)."""
    return to_us(config.epoch) + 86_400 * US_PER_SECOND


def _assignment_json(
    assignment: AppRoleAssignment, principal: SpState, resource: SpState | None
) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "deletedDateTime": None,
        "appRoleId": assignment.app_role_id,
        "createdDateTime": graph_time(assignment.created_us),
        "principalDisplayName": principal.display_name,
        "principalId": principal.id,
        "principalType": "ServicePrincipal",
        "resourceDisplayName": None if resource is None else resource.display_name,
        "resourceId": assignment.resource_id,
    }


def _parse_id_filter(text: str | None) -> frozenset[str] | None:
    """`id eq '...'` clauses joined by `or` (the only $filter delta supports), as lower-case ids."""
    if text is None or not text.strip():
        return None
    ids = []
    for clause in re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE):
        match = _ID_CLAUSE.match(clause)
        if match is None or not _is_guid(match.group(1)):
            raise ODataError(
                f"Unsupported filter for delta: {text!r}; only id eq '{{id}}' clauses joined by 'or'."
            )
        ids.append(match.group(1).lower())
    return frozenset(ids)


def _fields(document: dict[str, Any], *, required: Sequence[str], optional: Sequence[str]) -> dict[str, Any]:
    unknown = set(document) - set(required) - set(optional)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    for name in required:
        if name not in document:
            raise ValueError(f"{name} is required")
    return document


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value.strip()


def _choice(value: Any, name: str, choices: dict[str, Any]) -> Any:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return choices[value]


def _actor(fields: dict[str, Any]) -> str | None:
    actor = fields.get("actor")
    if actor is not None and (not isinstance(actor, str) or "@" not in actor.strip("@")):
        raise ValueError(f"actor must be a user principal name, got {actor!r}")
    return actor


def _time(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an ISO-8601 time with a zone")
    try:
        return parse_time(value, require_zone=True)[0]
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
