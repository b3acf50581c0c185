"""The Microsoft Graph reads governance discovery makes: delta rounds, and the per-object reads packed
into JSON batches of 20.

Graph shapes followed (https://learn.microsoft.com/graph/...):

- Delta query (`delta-query-overview`, `api/serviceprincipal-delta`, `api/application-delta`):
  `GET /v1.0/{servicePrincipals|applications}/delta?$select=...` answers pages
  `{"value": [...], "@odata.nextLink": ...}`; the last page of a round carries `@odata.deltaLink`
  instead, which starts the next round. A removed object is `{"id": ..., "@removed": {"reason":
  "changed" | "deleted"}}`. An updated object carries "at least the properties that have been
  updated": an incremental round's items may be partial, so discovery reads changed objects again.
  Query parameters go on the first request only; the links carry them. A token Graph no longer knows
  (directory delta tokens live 7 days) answers `410 Gone` (code `syncStateNotFound` or
  `resyncRequired`, a `Location` header with a fresh round); Microsoft's 2020 notice on token lifetime
  describes the same case as `400` with code `syncStateNotFound`. Both raise `DeltaExpired`.
- JSON batching (`json-batching`, `throttling` "Throttling and batching"): `POST /v1.0/$batch`
  `{"requests": [{"id", "method", "url"}]}` with at most 20 requests whose `url` is relative to the
  version root; the answer `{"responses": [{"id", "status", "headers", "body"}]}` may come in any order.
  Each request inside is evaluated against the throttling limits on its own, so a 200 batch can hold
  429 answers with their own `Retry-After`.
- Collections inside a batch answer (owners, appRoleAssignments, memberOf) page like any listing: an
  `@odata.nextLink` in a body is followed with plain GETs (the link is absolute, on Graph's origin).

Retries: every HTTP call goes through `shared.m365.http_client.ApiClient` (tenacity; 429, 5xx and
transport failures; `Retry-After` honoured; bounded by attempts and the deadline; a timeout on every
call). Inside a batch only the throttled (429) or failed (5xx) requests are tried again, after their own
`Retry-After` (else the ApiClient's full-jitter backoff), at most `max_inner_attempts` times and never
past the deadline. They rejoin the queue and ride in the next batch with other pending reads, so a retry
rarely costs a batch of its own; while Graph asks the app to wait, no new batch starts.

Counting: `GraphReader.stats` says how many delta pages and reads (inner requests planned, first attempts
only) a sweep took, and how many HTTP requests it really sent (every attempt, from a private ApiClient
that shares the caller's pooled connection and token provider, so other work on the caller's client is
not counted). `ReadStats.minimum_requests` is delta pages + ceil(reads / 20): what a sweep would cost
with every batch full and nothing retried.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict

from shared.ingestion.sources.graph_paging import iter_graph_pages
from shared.m365.http_client import ApiClient, ApiError, parse_retry_after
from shared.platform.redact import redact

DeltaResource = Literal["servicePrincipals", "applications"]
DELTA_RESOURCES: tuple[DeltaResource, ...] = ("servicePrincipals", "applications")
MAX_BATCH_REQUESTS = 20  # Graph's JSON batching limit
GRAPH_VERSION = "v1.0"

# What the governance model reads (shared/governance/model.py), as $select lists.
SERVICE_PRINCIPAL_SELECT: tuple[str, ...] = (
    "id",
    "appId",
    "displayName",
    "appDisplayName",
    "notes",
    "accountEnabled",
    "servicePrincipalType",
    "appOwnerOrganizationId",
    "signInAudience",
    "passwordCredentials",
    "keyCredentials",
    "verifiedPublisher",
    "tags",
)
APPLICATION_SELECT: tuple[str, ...] = (
    "id",
    "appId",
    "displayName",
    "notes",
    "signInAudience",
    "publisherDomain",
    "passwordCredentials",
    "keyCredentials",
    "verifiedPublisher",
)
# accountEnabled and userType are not default properties of a user: they must be asked for.
OWNER_SELECT: tuple[str, ...] = (
    "id",
    "displayName",
    "userPrincipalName",
    "accountEnabled",
    "userType",
    "appId",
)
ASSIGNMENT_SELECT: tuple[str, ...] = (
    "id",
    "appRoleId",
    "principalId",
    "principalType",
    "resourceId",
    "resourceDisplayName",
    "createdDateTime",
    "deletedDateTime",
)
RESOURCE_SELECT: tuple[str, ...] = ("id", "appId", "displayName", "appRoles")
DELTA_SELECT: Mapping[DeltaResource, tuple[str, ...]] = {
    "servicePrincipals": SERVICE_PRINCIPAL_SELECT,
    "applications": APPLICATION_SELECT,
}
# Error codes that say a delta token is no longer usable (with 410, or with 400 as Microsoft's 2020
# notice on delta token lifetime shows).
RESYNC_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
RETRYABLE_INNER = frozenset({429, 500, 502, 503, 504})


def _select(names: Sequence[str]) -> str:
    return "$select=" + ",".join(names)


def _key(value: str) -> str:
    """An id or appId for a URL path: percent-encoded (they are GUIDs; this only guards the path)."""
    return quote(value, safe="")


class GraphPaths:
    """Relative URLs (from the version root) of the reads discovery batches, each with its $select."""

    @staticmethod
    def service_principal(object_id: str) -> str:
        return f"/servicePrincipals/{_key(object_id)}?{_select(SERVICE_PRINCIPAL_SELECT)}"

    @staticmethod
    def service_principal_by_app_id(app_id: str) -> str:
        return f"/servicePrincipals(appId='{_key(app_id)}')?{_select(SERVICE_PRINCIPAL_SELECT)}"

    @staticmethod
    def owners(object_id: str) -> str:
        return f"/servicePrincipals/{_key(object_id)}/owners?{_select(OWNER_SELECT)}"

    @staticmethod
    def app_role_assignments(object_id: str) -> str:
        return f"/servicePrincipals/{_key(object_id)}/appRoleAssignments?{_select(ASSIGNMENT_SELECT)}"

    @staticmethod
    def member_of(object_id: str) -> str:
        """Groups and activated directory roles; no $select, since roleTemplateId is a property of the
        directoryRole type, not of directoryObject."""
        return f"/servicePrincipals/{_key(object_id)}/memberOf"

    @staticmethod
    def application(object_id: str) -> str:
        return f"/applications/{_key(object_id)}?{_select(APPLICATION_SELECT)}"

    @staticmethod
    def application_by_app_id(app_id: str) -> str:
        return f"/applications(appId='{_key(app_id)}')?{_select(APPLICATION_SELECT)}"

    @staticmethod
    def application_owners(object_id: str) -> str:
        return f"/applications/{_key(object_id)}/owners?{_select(OWNER_SELECT)}"

    @staticmethod
    def application_owners_by_app_id(app_id: str) -> str:
        return f"/applications(appId='{_key(app_id)}')/owners?{_select(OWNER_SELECT)}"

    @staticmethod
    def resource_by_app_id(app_id: str) -> str:
        """A resource service principal with the app roles it publishes (permission names)."""
        return f"/servicePrincipals(appId='{_key(app_id)}')?{_select(RESOURCE_SELECT)}"


class DeltaExpired(Exception):
    """Graph no longer knows the delta or skip token: the round must start again from scratch."""

    def __init__(self, resource: DeltaResource, status: int | None, code: str | None, message: str) -> None:
        self.resource = resource
        self.status = status
        self.code = code
        self.message = redact(message)
        super().__init__(f"{resource} delta: HTTP {status} {code or ''}: {self.message}".strip())


@dataclass(frozen=True)
class DeltaRound:
    """One delta round, every page joined. `items` are the objects reported (not removed), one per id
    (a replayed id keeps its last report), in the order Graph first reported them; `removed` the ids of
    `@removed` entries; `malformed` the entries without a string id."""

    resource: DeltaResource
    items: tuple[dict[str, Any], ...]
    removed: tuple[str, ...]
    delta_link: str
    pages: int
    malformed: int = 0


@dataclass(frozen=True)
class BatchGet:
    """One GET to send inside a batch: `key` names it for the caller (unique per sweep), `url` is
    relative to the version root ("/servicePrincipals/{id}/owners?$select=...")."""

    key: str
    url: str


@dataclass(frozen=True)
class ReadAnswer:
    """How one read ended. `status` is Graph's (0: no answer within the attempts or the deadline);
    `body` is the JSON object answered (for a collection, `value` holds every page)."""

    key: str
    url: str
    status: int
    body: dict[str, Any] | None = None
    code: str | None = None
    message: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def not_found(self) -> bool:
        return self.status == 404

    def values(self) -> list[dict[str, Any]]:
        """A collection answer's items (objects only)."""
        items = (self.body or {}).get("value")
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


AnswerHandler = Callable[[ReadAnswer], Iterable[BatchGet]]
"""Called once per read with its final answer, on the caller's thread; returns follow-up reads, which
join the queue (a key already planned in this sweep is not read twice)."""


class ReadStats(BaseModel):
    """What a sweep cost in Graph requests."""

    model_config = ConfigDict(extra="forbid")

    delta_pages: int = 0
    reads: int = 0  # requests planned inside batches (first attempts)
    batches: int = 0  # $batch calls answered
    inner_retries: int = 0  # requests inside a batch sent again (429 or 5xx)
    inner_throttled: int = 0
    inner_server_errors: int = 0
    extra_pages: int = 0  # nextLink pages of collections answered inside a batch
    requests: int = 0  # HTTP requests sent: every attempt of every call
    outer_retries: int = 0  # waits before another attempt of a whole call (delta page, batch, page)

    @property
    def minimum_requests(self) -> int:
        """Delta pages + ceil(reads / 20): every batch full and nothing retried."""
        return self.delta_pages + math.ceil(self.reads / MAX_BATCH_REQUESTS)


@dataclass
class _Pending:
    read: BatchGet
    attempts: int = 0
    not_before: float = 0.0
    last: ReadAnswer | None = None


@dataclass
class _Counters:
    delta_pages: int = 0
    reads: int = 0
    batches: int = 0
    inner_retries: int = 0
    inner_throttled: int = 0
    inner_server_errors: int = 0
    extra_pages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Queue:
    """Reads waiting to be sent: new ones in order, and retries by the time they are due (first). A key
    is planned once per sweep."""

    def __init__(self) -> None:
        self._fresh: deque[_Pending] = deque()
        self._waiting: list[tuple[float, int, _Pending]] = []
        self._keys: set[str] = set()
        self._sequence = 0

    def __bool__(self) -> bool:
        return bool(self._fresh or self._waiting)

    def add(self, pending: _Pending) -> bool:
        if pending.read.key in self._keys:
            return False
        self._keys.add(pending.read.key)
        self._fresh.append(pending)
        return True

    def retry(self, pending: _Pending) -> None:
        self._sequence += 1
        heapq.heappush(self._waiting, (pending.not_before, self._sequence, pending))

    def take(self, now: float, size: int, *, partial_ok: bool) -> list[_Pending]:
        due = sum(1 for when, _, _ in self._waiting if when <= now)
        if due + len(self._fresh) < size and not partial_ok:
            return []
        taken: list[_Pending] = []
        while len(taken) < size and self._waiting and self._waiting[0][0] <= now:
            taken.append(heapq.heappop(self._waiting)[2])
        while len(taken) < size and self._fresh:
            taken.append(self._fresh.popleft())
        return taken

    def send_at(self, now: float, size: int, window: float) -> float:
        """When the next batch should leave if nothing else is in flight: now when a full batch is ready
        (or nothing more will become due), else when enough retries are due to fill it, but at most
        `window` seconds after the first read is ready (retries that fall due one by one at the end of
        a sweep then share a batch instead of each taking one)."""
        later = sorted(when for when, _, _ in self._waiting if when > now)
        ready = len(self._fresh) + len(self._waiting) - len(later)
        if ready >= size or not later:
            return now
        fill = later[min(size - ready, len(later)) - 1]
        start = now if ready else later[0]
        return min(fill, start + window)

    def drain(self) -> list[_Pending]:
        drained = [*(entry[2] for entry in sorted(self._waiting)), *self._fresh]
        self._waiting.clear()
        self._fresh.clear()
        return drained


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _header(headers: object, name: str) -> str | None:
    if not isinstance(headers, dict):
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str | int | float):
            return str(value)
    return None


def _inner_error(body: object) -> tuple[str | None, str]:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            return (str(code) if code else None), (str(message) if message else "no details")
    return None, "no details"


class GraphReader:
    """Delta rounds and batched reads against one Graph endpoint, for one sweep.

    `api` lends its token provider, pooled HTTP client, timeouts and retry policy (a private ApiClient is
    built over them, so `stats.requests` counts this reader's requests only). `graph_base` is the root
    without the version ("https://graph.microsoft.com", or the simulator's ".../graph"); `scope` the
    token scope ("https://graph.microsoft.com/.default"). `deadline` is a `clock.monotonic()` value after
    which no retry starts. `concurrency` batches are in flight at once (1: strictly one after another).
    `gather_seconds`: how long a batch that is not full waits for retries falling due to fill it.
    """

    def __init__(
        self,
        api: ApiClient,
        graph_base: str,
        scope: str,
        *,
        deadline: float | None = None,
        concurrency: int = 4,
        batch_size: int = MAX_BATCH_REQUESTS,
        max_inner_attempts: int | None = None,
        gather_seconds: float = 2.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_REQUESTS:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_REQUESTS}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._api = ApiClient(
            api.token_provider,
            http=api.http,
            timeout=api.timeout,
            clock=api.clock,
            sleep=api.sleep,
            random=api.random,
            max_attempts=api.max_attempts,
            backoff_base=api.backoff_base,
            backoff_cap=api.backoff_cap,
            max_retry_after=api.max_retry_after,
        )
        self._base = graph_base.rstrip("/")
        self._root = f"{self._base}/{GRAPH_VERSION}"
        self._origin = _origin(self._base)
        self._scope = scope
        self.deadline = deadline
        self._concurrency = concurrency
        self._batch_size = batch_size
        self._max_inner_attempts = max_inner_attempts or api.max_attempts
        self._gather = max(0.0, gather_seconds)
        self._counters = _Counters()
        self._pause_until = 0.0  # monotonic: no new batch before (Graph asked the app to wait)

    # -- counting ---------------------------------------------------------------------------------

    @property
    def stats(self) -> ReadStats:
        api = self._api.stats
        c = self._counters
        with c.lock:
            return ReadStats(
                delta_pages=c.delta_pages,
                reads=c.reads,
                batches=c.batches,
                inner_retries=c.inner_retries,
                inner_throttled=c.inner_throttled,
                inner_server_errors=c.inner_server_errors,
                extra_pages=c.extra_pages,
                requests=api.requests,
                outer_retries=api.retries,
            )

    def _count(self, name: str, amount: int = 1) -> None:
        with self._counters.lock:
            setattr(self._counters, name, getattr(self._counters, name) + amount)

    # -- delta ------------------------------------------------------------------------------------

    def initial_delta_url(self, resource: DeltaResource) -> str:
        """The first request of a full round, with the $select discovery reads (kept in the links)."""
        return f"{self._root}/{resource}/delta?{_select(DELTA_SELECT[resource])}"

    def on_graph_origin(self, url: str) -> bool:
        """Whether `url` is on this Graph endpoint's scheme and host (a stored link must be, since the
        bearer token goes with it)."""
        try:
            return _origin(url) == self._origin and bool(urlsplit(url).path)
        except ValueError:
            return False

    def delta_round(self, resource: DeltaResource, link: str | None = None) -> DeltaRound:
        """Follow one round from `link` (a stored deltaLink) or from the start, to its deltaLink.

        Raises DeltaExpired when Graph no longer knows a token (at the first page or any later one), and
        ApiError for anything else (after the ApiClient's retries)."""
        url = link or self.initial_delta_url(resource)
        if not self.on_graph_origin(url):
            raise ApiError(None, "InvalidDeltaLink", "the delta link is not on the Graph endpoint", url)
        order: list[str] = []
        latest: dict[str, dict[str, Any]] = {}
        removed: dict[str, None] = {}
        malformed = 0
        pages = 0
        last: dict[str, Any] = {}
        try:
            for value, page in iter_graph_pages(self._api, url, scope=self._scope, deadline=self.deadline):
                pages += 1
                self._count("delta_pages")
                last = page
                for item in value:
                    object_id = item.get("id") if isinstance(item, dict) else None
                    if not isinstance(object_id, str) or not object_id:
                        malformed += 1
                        continue
                    if "@removed" in item:
                        latest.pop(object_id, None)
                        removed[object_id] = None
                        continue
                    removed.pop(object_id, None)
                    if object_id not in latest:
                        order.append(object_id)
                    latest[object_id] = item
        except ApiError as error:
            if error.status == 410 or (error.code or "").lower() in RESYNC_CODES:
                raise DeltaExpired(resource, error.status, error.code, error.message) from None
            raise
        delta_link = last.get("@odata.deltaLink")
        if not isinstance(delta_link, str) or not self.on_graph_origin(delta_link):
            raise ApiError(None, "InvalidDeltaLink", "the round's last page has no usable deltaLink", url)
        items = tuple(latest[i] for i in order if i in latest)
        return DeltaRound(resource, items, tuple(removed), delta_link, pages, malformed)

    # -- batched reads ------------------------------------------------------------------------------

    def read_all(self, reads: Iterable[BatchGet], on_answer: AnswerHandler) -> None:
        """Read everything in `reads`, and the follow-ups `on_answer` returns, in batches of up to 20.

        Every read ends in exactly one `on_answer` call: 2xx, 404, another error, or status 0 when its
        attempts or the deadline ran out. A batch whose `$batch` call itself fails (after the ApiClient's
        retries) raises ApiError: nothing more is sent.
        """
        queue = _Queue()

        def plan(items: Iterable[BatchGet]) -> None:
            for read in items:
                if not read.url.startswith("/"):
                    raise ValueError(f"a batched read's url is relative to /{GRAPH_VERSION}: {read.url!r}")
                if queue.add(_Pending(read)):
                    self._count("reads")

        plan(reads)
        executor = (
            concurrent.futures.ThreadPoolExecutor(self._concurrency, thread_name_prefix="graph-batch")
            if self._concurrency > 1
            else None
        )
        in_flight: dict[concurrent.futures.Future[dict[str, Any]], list[_Pending]] = {}
        try:
            while queue or in_flight:
                now = self._api.clock.monotonic()
                while len(in_flight) < self._concurrency and now >= self._pause_until:
                    # A batch that is not full leaves only when no other batch is in flight (whose
                    # answers could bring the reads to fill it), and after a short wait for retries.
                    if not in_flight and now < queue.send_at(now, self._batch_size, self._gather):
                        break
                    ready = queue.take(now, self._batch_size, partial_ok=not in_flight)
                    if not ready:
                        break
                    future = self._submit(executor, ready)
                    in_flight[future] = ready
                if in_flight:
                    done, _ = concurrent.futures.wait(
                        in_flight, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                    for future in done:
                        sent = in_flight.pop(future)
                        answer = future.result()  # ApiError: the batch call failed; stop here
                        self._count("batches")
                        self._settle(sent, answer, queue, on_answer, plan)
                    continue
                # Nothing in flight and nothing to send yet: wait for retries to be due (or for Graph's
                # pause to end), or give up on the waiting reads when that is past the deadline.
                wake = max(queue.send_at(now, self._batch_size, self._gather), self._pause_until)
                if self.deadline is not None and wake > self.deadline:
                    for pending in queue.drain():
                        last = pending.last or ReadAnswer(
                            pending.read.key, pending.read.url, 0, attempts=pending.attempts
                        )
                        self._finish(last, on_answer, plan)
                    continue
                if wake > now:
                    self._api.sleep(wake - now)
        finally:
            for future in in_flight:
                future.cancel()
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)

    def _submit(
        self, executor: concurrent.futures.ThreadPoolExecutor | None, batch: list[_Pending]
    ) -> concurrent.futures.Future[dict[str, Any]]:
        for pending in batch:
            pending.attempts += 1
        body = {
            "requests": [
                {"id": str(index), "method": "GET", "url": pending.read.url}
                for index, pending in enumerate(batch)
            ]
        }
        if executor is not None:
            return executor.submit(self._post_batch, body)
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        try:
            future.set_result(self._post_batch(body))
        except ApiError as error:
            future.set_exception(error)
        return future

    def _post_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._root}/$batch"
        response = self._api.request("POST", url, scope=self._scope, json=body, deadline=self.deadline)
        try:
            document = response.json()
        except ValueError:
            raise ApiError(
                response.status_code, "InvalidBatch", "the batch answer is not JSON", url
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("responses"), list):
            raise ApiError(response.status_code, "InvalidBatch", "the batch answer has no 'responses'", url)
        return document

    def _settle(
        self,
        sent: list[_Pending],
        document: dict[str, Any],
        queue: _Queue,
        on_answer: AnswerHandler,
        plan: Callable[[Iterable[BatchGet]], None],
    ) -> None:
        by_id: dict[str, dict[str, Any]] = {}
        for response in document["responses"]:
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                by_id[response["id"]] = response
        now = self._api.clock.monotonic()
        for index, pending in enumerate(sent):
            response = by_id.get(str(index))
            status = response.get("status") if response is not None else None
            if response is None or not isinstance(status, int):
                # Graph left this request out (or answered it without a status): try it again.
                self._retry_or_give_up(
                    pending, None, 0, None, "no answer in the batch", now, queue, on_answer, plan
                )
                continue
            body = response.get("body")
            if 200 <= status < 300:
                self._finish(self._success(pending, status, body), on_answer, plan)
                continue
            code, message = _inner_error(body)
            if status in RETRYABLE_INNER:
                header = _header(response.get("headers"), "Retry-After")
                retry_after = parse_retry_after(header, self._api.clock.now())
                self._count("inner_throttled" if status == 429 else "inner_server_errors")
                self._retry_or_give_up(
                    pending, retry_after, status, code, message, now, queue, on_answer, plan
                )
                continue
            answer = ReadAnswer(
                pending.read.key, pending.read.url, status, None, code, message, pending.attempts
            )
            self._finish(answer, on_answer, plan)

    def _success(self, pending: _Pending, status: int, body: object) -> ReadAnswer:
        read = pending.read
        document = body if isinstance(body, dict) else None
        if document is not None and isinstance(document.get("@odata.nextLink"), str):
            try:
                document = self._rest_of_collection(document)
            except ApiError as error:
                return ReadAnswer(
                    read.key, read.url, error.status or 0, None, error.code, error.message, pending.attempts
                )
        return ReadAnswer(read.key, read.url, status, document, attempts=pending.attempts)

    def _retry_or_give_up(
        self,
        pending: _Pending,
        retry_after: float | None,
        status: int,
        code: str | None,
        message: str,
        now: float,
        queue: _Queue,
        on_answer: AnswerHandler,
        plan: Callable[[Iterable[BatchGet]], None],
    ) -> None:
        read = pending.read
        pending.last = ReadAnswer(read.key, read.url, status, None, code, message, pending.attempts)
        if retry_after is not None:
            wait = retry_after
        else:
            ceiling = min(self._api.backoff_cap, self._api.backoff_base * 2.0 ** (pending.attempts - 1))
            wait = self._api.random() * ceiling
        too_late = self.deadline is not None and now + wait > self.deadline
        too_long = retry_after is not None and retry_after > self._api.max_retry_after
        if pending.attempts >= self._max_inner_attempts or too_late or too_long:
            self._finish(pending.last, on_answer, plan)
            return
        self._count("inner_retries")
        pending.not_before = now + wait
        if status == 429:
            self._pause_until = max(self._pause_until, pending.not_before)
        queue.retry(pending)

    def _finish(
        self, answer: ReadAnswer, on_answer: AnswerHandler, plan: Callable[[Iterable[BatchGet]], None]
    ) -> None:
        plan(on_answer(answer))

    def _rest_of_collection(self, body: dict[str, Any]) -> dict[str, Any]:
        """A collection answered inside a batch with an `@odata.nextLink`: the remaining pages, joined."""
        link = body["@odata.nextLink"]
        if not self.on_graph_origin(link):
            raise ApiError(None, "InvalidNextLink", "@odata.nextLink leaves the Graph endpoint", link)
        values = list(body.get("value") or [])
        for value, _page in iter_graph_pages(self._api, link, scope=self._scope, deadline=self.deadline):
            self._count("extra_pages")
            values.extend(value)
        joined = {k: v for k, v in body.items() if k != "@odata.nextLink"}
        joined["value"] = values
        return joined
