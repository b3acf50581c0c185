"""The saved-search routes: GET and POST /api/searches, GET, PUT and DELETE /api/searches/{id}.

A saved search names one state of the event explorer: its query string, checked here to hold only the
explorer's parameters (web/src/state.js SINGLE and MULTI, the API's event filters) with values the
events API accepts, and stored in a canonical order. Its owner (the caller's object id) may rename it,
re-share it, pin it and delete it; anyone holding the role it is shared with may read it. A change
needs the search's ETag in If-Match (428 without, 412 when stale); a delete honours one when sent.
Every change is audited. A search whose filters name an operation hidden from the caller by the privacy
policy is not shown to them (its owner excepted), as the events API never names one.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Literal
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from shared.api.audit import AuditLog
from shared.api.auth import Principal, Role
from shared.api.events_query import EventQuery, SensitivityPolicy
from shared.api.problems import ApiProblem, bad_request
from shared.api.responses import ApiGuard, ApiResponse, header, json_response, not_found
from shared.api.routing import Call, EmptyBody, NoQuery, PathParam, Reply, Resource, route
from shared.platform.clock import Clock, utc_iso
from shared.platform.ids import is_search_id
from shared.searches.model import SavedSearch, ShareRole, Visibility, search_id
from shared.searches.store import SearchExistsError, SearchStore, StaleSearchError, StoredSearch

logger = logging.getLogger(__name__)

# The explorer's URL parameters (web/src/state.js): one value each, and repeatable ones.
EXPLORER_SINGLE = (
    "q",
    "start",
    "end",
    "operation",
    "operation_contains",
    "result",
    "actor",
    "target",
    "source",
    "category",
    "correlation_id",
)
EXPLORER_MULTI = (
    "service",
    "tag",
    "exclude_tag",
    "exclude_service",
    "exclude_operation",
    "exclude_result",
    "exclude_actor",
    "exclude_source",
)
MAX_QUERY_LENGTH = 4096  # characters of the query string
MAX_QUERY_FIELDS = 200
MAX_NAME_LENGTH = 100
MAX_OWNED = 200  # searches per owner
MAX_LISTED = 1000  # searches in one answer
MAX_IF_MATCH_LENGTH = 1000
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e]*"'
IF_MATCH = re.compile(rf"\*|{_ENTITY_TAG}(?:[ \t]*,[ \t]*{_ENTITY_TAG})*")
SEARCH_ID = PathParam("id", "saved search id: srch- and 32 hex digits", "saved search", is_search_id)


def _printable(value: str) -> bool:
    return not any(unicodedata.category(char) in ("Cc", "Cs") for char in value)


def canonical_query(text: str) -> str:
    """The explorer's query string (a leading '?' allowed) checked and re-encoded in a stable order:
    ValueError naming the parameter at fault for anything the explorer would not write or the events
    API would refuse."""
    text = text[1:] if text.startswith("?") else text
    if not text:
        return ""
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_QUERY_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError included
        raise ValueError("not a query string of name=value pairs (UTF-8, percent-encoded)") from None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        shown = name[:40] if _printable(name) else "a parameter"
        if name in EXPLORER_SINGLE:
            if name in single:
                raise ValueError(f"{shown} may be given only once")
            single[name] = value
        elif name in EXPLORER_MULTI:
            if value not in multi.setdefault(name, []):
                multi[name].append(value)
        else:
            raise ValueError(f"{shown!r} is not a filter of the event explorer")
        if not value.strip():
            raise ValueError(f"{shown} is empty")
        if not _printable(value):
            raise ValueError(f"{shown} holds control characters")
    try:
        EventQuery.model_validate({**single, **multi})
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{field}: {first['msg']}") from None
    ordered = [(n, single[n]) for n in EXPLORER_SINGLE if n in single]
    ordered += [(n, v) for n in EXPLORER_MULTI for v in multi.get(n, [])]
    return urlencode(ordered)


# --- documented models -------------------------------------------------------------------------------


class SearchInput(BaseModel):
    """A saved search as its owner sets it: POST creates one, PUT replaces these fields of one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="1 to 100 characters")
    query: str = Field(
        max_length=MAX_QUERY_LENGTH,
        description=(
            "the event explorer's query string (what follows '?' in the console's address), e.g. "
            "service=Exchange&start=7d: only the explorer's filters, each valid for GET /api/events; "
            "stored re-encoded in a stable order"
        ),
    )
    visibility: Visibility = Field(
        default="private", description="private: the owner only; role: also everyone holding `role`"
    )
    role: ShareRole | None = Field(
        default=None, description="with visibility role (required then): a role the caller holds"
    )
    pinned: StrictBool = Field(default=False, description="shown on the console's home page")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the name is blank")
        if not _printable(value):
            raise ValueError("the name holds control characters")
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return canonical_query(value)


class SearchListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pinned: bool | None = Field(default=None, description="true: pinned searches only; false: unpinned only")


class SearchView(BaseModel):
    id: str
    name: str
    query: str = Field(description="the explorer's query string: open /?<query> in the console")
    visibility: Visibility
    role: ShareRole | None = None
    pinned: bool
    owner: str = Field(description="the owner's object id")
    owner_name: str = Field(description="the owner's sign-in name")
    created_at: str
    updated_at: str
    etag: str = Field(description="send it back in If-Match to change or delete the search")
    mine: bool = Field(description="the caller owns it (and may change or delete it)")


class SearchList(BaseModel):
    items: list[SearchView] = Field(description="by name, case-insensitive")
    truncated: bool = Field(description=f"more than {MAX_LISTED} searches matched; the rest are left out")


class SearchDeleted(BaseModel):
    id: str
    deleted: Literal[True] = True


# --- helpers ----------------------------------------------------------------------------------------


def quoted(etag: str) -> str:
    """An ETag as an HTTP entity tag (Cosmos DB's already carries its double quotes)."""
    return etag if etag.startswith('"') and etag.endswith('"') and len(etag) > 1 else f'"{etag}"'


def if_match(headers: Mapping[str, str]) -> list[str] | None:
    """The entity tags of the If-Match header ("*" alone, or a list); None when it is absent; a 400 when
    it is malformed."""
    raw = header(headers, "If-Match")
    if raw is None:
        return None
    value = raw.strip()
    if len(value) > MAX_IF_MATCH_LENGTH or IF_MATCH.fullmatch(value) is None:
        raise bad_request('If-Match must be "*" or a list of entity tags such as "abc"', field="If-Match")
    return ["*"] if value == "*" else re.findall(_ENTITY_TAG, value)


def matches(tags: list[str], etag: str) -> bool:
    """If-Match's strong comparison: a weak tag (W/"…") never matches."""
    return "*" in tags or quoted(etag) in tags


def precondition_failed() -> ApiProblem:
    return ApiProblem(
        412,
        "Precondition Failed",
        "the saved search changed since you read it (its ETag moved): read it again and retry",
        kind="precondition-failed",
    )


def precondition_required() -> ApiProblem:
    return ApiProblem(
        428,
        "Precondition Required",
        "send the saved search's ETag in If-Match (from GET /api/searches or /api/searches/{id})",
        kind="precondition-required",
    )


def _names_hidden_operation(search: SavedSearch, hide: SensitivityPolicy | None) -> bool:
    if hide is None or not hide.operations:
        return False
    hidden = set(hide.operations)
    pairs = parse_qsl(search.query, keep_blank_values=True)
    return any(name in ("operation", "exclude_operation") and value in hidden for name, value in pairs)


class SearchesApi(Resource):
    def __init__(
        self, guard: ApiGuard, store: SearchStore, audit: AuditLog, tenant_id: str, clock: Clock
    ) -> None:
        self.guard = guard
        self._store = store
        self._audit = audit
        self._tenant_id = tenant_id
        self._clock = clock

    @route(
        "GET",
        "searches",
        "list_searches",
        operation_id="listSearches",
        role=Role.READER,
        summary="The caller's saved searches and those shared with a role they hold",
        query=SearchListQuery,
        body=None,
        response=SearchList,
        description=f"Sorted by name, case-insensitive; at most {MAX_LISTED}. Each carries its ETag.",
    )
    def list_searches(self, call: Call[SearchListQuery, None]) -> Reply:
        principal = call.principal
        found = self._store.visible(
            principal.subject, principal.roles, pinned=call.query.pinned, limit=MAX_LISTED + 1
        )
        shown = [s for s in found[:MAX_LISTED] if self._may_see(s.search, principal, call.hide)]
        shown.sort(key=lambda s: (s.search.name.casefold(), s.search.name, s.search.id))
        return SearchList(items=[self._view(s, principal) for s in shown], truncated=len(found) > MAX_LISTED)

    @route(
        "POST",
        "searches",
        "create_search",
        operation_id="createSearch",
        role=Role.READER,
        summary="Save a state of the event explorer under a name",
        query=NoQuery,
        body=SearchInput,
        response=SearchView,
        status=201,
        description=(
            f"Answers 201 with the search and its ETag (header and body). At most {MAX_OWNED} searches per "
            "owner (409 beyond). With an Idempotency-Key a retry answers with the search the first attempt "
            "made. Recorded in the audit log."
        ),
    )
    def create_search(self, call: Call[NoQuery, SearchInput]) -> Reply:
        principal, body, key = call.principal, call.body, call.idempotency_key
        self._check_sharing(body, principal)
        new_id = search_id(self._tenant_id, principal.subject, key)
        if key is not None:
            replay = self._store.get(new_id)
            if replay is not None and replay.search.owner == principal.subject:
                return self._answer(replay, principal, 201)
        if self._store.count_owned(principal.subject) >= MAX_OWNED:
            raise ApiProblem(
                409,
                "Conflict",
                f"you have {MAX_OWNED} saved searches, the most one person may keep: delete some first",
                kind="too-many-searches",
            )
        now = utc_iso(self._clock.now())
        search = SavedSearch(
            id=new_id,
            pk=self._tenant_id,
            owner=principal.subject,
            owner_name=principal.name[:200],
            created_at=now,
            updated_at=now,
            **body.model_dump(),
        )
        try:
            stored = self._store.create(search)
        except SearchExistsError:
            # The same Idempotency-Key raced itself: answer with what the winner stored.
            stored = self._own(new_id, principal, call.hide)
            return self._answer(stored, principal, 201)
        self._audit.record(
            principal, "search.create", "saved_search", new_id, None, search.settings(), request_id=key
        )
        logger.info("saved search %s created by %s", new_id, principal.name)
        return self._answer(stored, principal, 201)

    @route(
        "GET",
        "searches/{id}",
        "get_search",
        operation_id="getSearch",
        role=Role.READER,
        summary="One saved search the caller may see",
        query=NoQuery,
        body=None,
        response=SearchView,
        path_params=(SEARCH_ID,),
        description="With its ETag (header and body). A search the caller may not see is a 404.",
    )
    def get_search(self, call: Call[NoQuery, None]) -> Reply:
        return self._answer(self._visible(call.params["id"], call.principal, call.hide), call.principal, 200)

    @route(
        "PUT",
        "searches/{id}",
        "put_search",
        operation_id="putSearch",
        role=Role.READER,
        summary="Rename, re-share, pin or unpin a saved search, or change its query (owner only)",
        query=NoQuery,
        body=SearchInput,
        response=SearchView,
        path_params=(SEARCH_ID,),
        problems={
            412: "The search changed since the ETag in If-Match: read it again",
            428: "If-Match is missing: send the search's ETag",
        },
        description=(
            "Replaces the search's name, query, visibility, role and pinned flag. Needs If-Match with the "
            "search's ETag: 428 without it, 412 when it is stale (unless the search already is as asked, "
            "RFC 9110 13.1.1: then 200). Only the owner may change it (403). Recorded in the audit log."
        ),
    )
    def put_search(self, call: Call[NoQuery, SearchInput]) -> Reply:
        principal, body = call.principal, call.body
        current = self._own(call.params["id"], principal, call.hide)
        tags = if_match(call.headers)
        if tags is None:
            raise precondition_required()
        self._check_sharing(body, principal)
        wanted = body.model_dump()
        if not matches(tags, current.etag):
            if current.search.settings() == wanted:
                return self._answer(current, principal, 200)  # already as asked: a retry that landed
            raise precondition_failed()
        changed = current.search.model_copy(
            update={**wanted, "owner_name": principal.name[:200], "updated_at": utc_iso(self._clock.now())}
        )
        try:
            stored = self._store.replace(changed, current.etag)
        except StaleSearchError:
            raise precondition_failed() from None
        self._audit.record(
            principal,
            "search.update",
            "saved_search",
            changed.id,
            current.search.settings(),
            changed.settings(),
            request_id=call.idempotency_key,
        )
        logger.info("saved search %s changed by %s", changed.id, principal.name)
        return self._answer(stored, principal, 200)

    @route(
        "DELETE",
        "searches/{id}",
        "delete_search",
        operation_id="deleteSearch",
        role=Role.READER,
        summary="Delete a saved search (owner only)",
        query=NoQuery,
        body=EmptyBody,
        response=SearchDeleted,
        path_params=(SEARCH_ID,),
        problems={412: "The search changed since the ETag in If-Match: read it again"},
        description=(
            "With If-Match, only if the search is still as read (412 if not). Only the owner may delete it "
            "(403). Recorded in the audit log."
        ),
    )
    def delete_search(self, call: Call[NoQuery, EmptyBody]) -> Reply:
        principal = call.principal
        current = self._own(call.params["id"], principal, call.hide)
        tags = if_match(call.headers)
        if tags is not None and not matches(tags, current.etag):
            raise precondition_failed()
        try:
            deleted = self._store.delete(current.search.id, current.etag if tags is not None else None)
        except StaleSearchError:
            raise precondition_failed() from None
        if not deleted:
            raise not_found("saved search", current.search.id)
        self._audit.record(
            principal,
            "search.delete",
            "saved_search",
            current.search.id,
            current.search.settings(),
            None,
            request_id=call.idempotency_key,
        )
        logger.info("saved search %s deleted by %s", current.search.id, principal.name)
        return SearchDeleted(id=current.search.id)

    # --- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _may_see(search: SavedSearch, principal: Principal, hide: SensitivityPolicy | None) -> bool:
        if not search.visible_to(principal.subject, principal.roles):
            return False
        return search.owner == principal.subject or not _names_hidden_operation(search, hide)

    def _visible(self, identifier: str, principal: Principal, hide: SensitivityPolicy | None) -> StoredSearch:
        stored = self._store.get(identifier)
        if stored is None or not self._may_see(stored.search, principal, hide):
            raise not_found("saved search", identifier)
        return stored

    def _own(self, identifier: str, principal: Principal, hide: SensitivityPolicy | None) -> StoredSearch:
        stored = self._visible(identifier, principal, hide)
        if stored.search.owner != principal.subject:
            raise ApiProblem(
                403, "Forbidden", "only its owner may change or delete a saved search", kind="forbidden"
            )
        return stored

    @staticmethod
    def _check_sharing(body: SearchInput, principal: Principal) -> None:
        if body.visibility == "role" and body.role is None:
            raise bad_request("a search shared with a role needs the role", field="role")
        if body.visibility == "private" and body.role is not None:
            raise bad_request("a private search has no role: leave role out or null", field="role")
        if body.role is not None and not principal.has(Role(body.role)):
            raise bad_request(f"you can share only with a role you hold, not {body.role}", field="role")

    @staticmethod
    def _view(stored: StoredSearch, principal: Principal) -> SearchView:
        search = stored.search
        return SearchView(
            **search.model_dump(exclude={"pk", "type"}),
            etag=quoted(stored.etag),
            mine=search.owner == principal.subject,
        )

    def _answer(self, stored: StoredSearch, principal: Principal, status: int) -> ApiResponse:
        response = json_response(self._view(stored, principal).model_dump(mode="json"), status=status)
        response.headers["ETag"] = quoted(stored.etag)
        if status == 201:
            response.headers["Location"] = f"/api/searches/{stored.search.id}"
        return response
