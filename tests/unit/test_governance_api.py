"""The governance routes (shared/api/governance_api.py) in process, over the in-memory governance stores
with data made by GovernanceService.evaluate: findings filtered and paged, the summary, one object with
its findings, exceptions and history, exceptions accepted and revoked (If-Match), discovery queued, and
activities; every refusal a problem naming the field."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any, cast

import pytest
from azure.cosmos import ContainerProxy

from shared.api.audit import AuditLog, AuditRecord
from shared.api.auth import Authenticator
from shared.api.events_query import SensitivityPolicy
from shared.api.governance_api import GovernanceApi, GovernanceStatus, governance_status, summarize
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard, ApiResponse
from shared.governance.config import VALIDATOR_IDS, ValidatorSet, parse_validator_file
from shared.governance.messages import DiscoveryRequest, activity_id, evaluation_id
from shared.governance.model import GovernedObject
from shared.governance.records import (
    ActivityCounts,
    ActivityRecord,
    FindingRecord,
    FindingState,
    exception_id,
)
from shared.governance.service import GovernanceService
from shared.governance.store import FindingFact, FindingQuery, Stored
from shared.platform.clock import utc_iso
from shared.platform.ids import is_governance_activity_id
from tests.support.clock import ManualClock
from tests.support.governance_memory import (
    FakeWriter,
    MemoryActivityStore,
    MemoryAudit,
    MemoryClaims,
    MemoryGovernanceStore,
)
from tests.support.principals import swa_principal

TENANT = "contoso"
T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
READER = {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")}
ADMIN = {"x-ms-client-principal": swa_principal(["admin"], user="root@contoso.com")}
JSON = {"Content-Type": "application/json"}
FINDING_FIELDS = {
    "id",
    "object_id",
    "object_name",
    "app_id",
    "validator_id",
    "severity",
    "subject",
    "message",
    "evidence",
    "state",
    "first_seen",
    "opened_at",
    "last_seen",
    "resolved_at",
    "exception_id",
}
OBJECT_FIELDS = {
    "object_id",
    "display_name",
    "app_id",
    "service_principal_type",
    "last_result",
    "last_evaluated_at",
    "last_trigger",
    "open_findings",
    "accepted_findings",
    "last_known_good",
    "remediation",
}
VALIDATORS: ValidatorSet = parse_validator_file(
    {
        "validators": [
            {"id": "notes-lists-owners", "severity": "medium"},
            {"id": "ownerless", "severity": "high"},
            {"id": "credential-expiry", "severity": "critical", "parameters": {"windows_days": [7, 30]}},
        ]
    },
    version="v1",
)
ALICE = {
    "@odata.type": "#microsoft.graph.user",
    "id": "00000000-0000-4000-8000-000000000001",
    "displayName": "alice",
    "userPrincipalName": "alice@contoso.com",
    "accountEnabled": True,
    "userType": "Member",
}


def guid(n: int) -> str:
    return f"11111111-1111-4111-8111-{n:012d}"


def sp(
    n: int, notes: str | None, *, owners: bool = True, expiring: dt.datetime | None = None
) -> GovernedObject:
    credentials: dict[str, Any] = {}
    if expiring is not None:
        credentials["passwordCredentials"] = [
            {
                "keyId": "33333333-3333-4333-8333-333333333333",
                "displayName": "CI",
                "startDateTime": utc_iso(expiring - dt.timedelta(days=90)),
                "endDateTime": utc_iso(expiring),
            }
        ]
    return GovernedObject.from_graph(
        {
            "id": guid(n),
            "appId": f"22222222-2222-4222-8222-{n:012d}",
            "displayName": f"App {n}",
            "servicePrincipalType": "Application",
            "notes": notes,
            **credentials,
        },
        owners=[ALICE] if owners else [],
    )


class ApiStore(MemoryGovernanceStore):
    """The in-memory store with the reads the API adds to CosmosGovernanceStore, same contracts."""

    def findings_page(
        self, tenant_id: str, query: FindingQuery, states: tuple[FindingState, ...] = ()
    ) -> list[FindingRecord]:
        found = self.findings(tenant_id, query.model_copy(update={"limit": 1000}))
        if states:
            found = [f for f in found if f.state in states]
        return found[: query.limit]

    def finding_facts(self, tenant_id: str) -> list[FindingFact]:
        return [FindingFact.model_validate(d) for d in self.of_type(tenant_id, "finding")]

    def stored_exceptions(self, tenant_id: str, object_id: str | None = None) -> list[Stored[Any]]:
        found = []
        for exception in self.exceptions(tenant_id, object_id):
            stored = self.get_exception(tenant_id, exception.id)
            assert stored is not None
            found.append(stored)
        return found


class AuditTrail:
    """ObjectAuditTrail over the service's MemoryAudit."""

    def __init__(self, audit: MemoryAudit) -> None:
        self._audit = audit

    def about(self, tenant_id: str, target_type: str, target_id: str, limit: int) -> list[AuditRecord]:
        found = [
            AuditRecord.model_validate(e.model_dump())
            for e in self._audit.entries.values()
            if (e.pk, e.target_type, e.target_id) == (tenant_id, target_type, target_id)
        ]
        return sorted(found, key=lambda r: (r.at, r.id), reverse=True)[:limit]


class AuditContainer:
    """What AuditLog writes to: the documents it upserts."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def upsert_item(self, body: dict[str, Any]) -> dict[str, Any]:
        self.documents.append(body)
        return body


class Queue:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_message(self, content: str) -> object:
        self.sent.append(content)
        return content


class World:
    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.store = ApiStore()
        self.activities = MemoryActivityStore()
        self.audit = MemoryAudit()
        self.service = GovernanceService(
            self.store,
            self.activities,
            self.audit,
            MemoryClaims(),
            FakeWriter(),
            VALIDATORS,
            mode="ReportOnly",
            graph_base="https://graph.microsoft.com",
        )
        self.queue = Queue()
        self.api_audit = AuditContainer()
        guard = ApiGuard(
            Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()
        )
        self.api = GovernanceApi(
            guard,
            self.service,
            self.store,
            self.activities,
            AuditTrail(self.audit),
            self.queue,
            AuditLog(cast(ContainerProxy, self.api_audit), TENANT, self.clock),
            ContinuationSigner(b"governance-api-unit-secret-0123"),
            TENANT,
            self.clock,
        )

    def evaluate(self, obj: GovernedObject, at: dt.datetime, cause: str) -> None:
        batch = activity_id("evaluation", TENANT, cause)
        self.service.evaluate(
            TENANT,
            obj,
            at,
            evaluation_id=evaluation_id(TENANT, obj.id, cause),
            batch_id=batch,
            trigger="discovery",
        )

    def get(self, path: str, headers: dict[str, str] = READER) -> ApiResponse:
        route = path.partition("?")[0]
        url = f"https://h/api/{path}"
        if route == "governance/findings":
            return self.api.list_governance_findings(url, headers, f"/api/{route}")
        if route == "governance/findings/summary":
            return self.api.governance_findings_summary(url, headers, f"/api/{route}")
        if route == "governance/exceptions":
            return self.api.list_governance_exceptions(url, headers, f"/api/{route}")
        if route == "governance/activities":
            return self.api.list_governance_activities(url, headers, f"/api/{route}")
        object_id = route.removeprefix("governance/objects/")
        return self.api.get_governance_object(object_id, url, headers, f"/api/{route}")

    def post_exception(self, body: Any, headers: dict[str, str] = ADMIN) -> ApiResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        url = "https://h/api/governance/exceptions"
        return self.api.create_governance_exception(
            url, raw, {**headers, **JSON}, "/api/governance/exceptions"
        )

    def delete_exception(self, ident: str, headers: dict[str, str] = ADMIN) -> ApiResponse:
        path = f"/api/governance/exceptions/{ident}"
        return self.api.delete_governance_exception(ident, f"https://h{path}", headers, path)

    def discover(self, body: bytes, headers: dict[str, str] = ADMIN) -> ApiResponse:
        path = "/api/governance/discovery"
        return self.api.request_governance_discovery(f"https://h{path}", body, headers, path)


def body(response: ApiResponse) -> Any:
    return json.loads(response.body)


def refused_field(response: ApiResponse, status: int = 400) -> str:
    assert response.status == status, response.body
    assert response.media_type == "application/problem+json"
    return str(body(response)["errors"][0]["field"])


@pytest.fixture
def world() -> World:
    """Five service principals evaluated a minute apart: 1 and 2 fail notes and credential expiry, 3
    fails notes only, 4 passes, 5 failed notes once and was fixed (its finding resolved)."""
    w = World()
    soon = T0 + dt.timedelta(days=3)
    w.evaluate(sp(1, "Payroll team", expiring=soon), T0, "sweep-1")
    w.evaluate(sp(2, None, expiring=soon), T0 + dt.timedelta(minutes=1), "sweep-1")
    w.evaluate(sp(3, "Nobody"), T0 + dt.timedelta(minutes=2), "sweep-1")
    w.evaluate(sp(4, "alice@contoso.com"), T0 + dt.timedelta(minutes=3), "sweep-1")
    w.evaluate(sp(5, "Someone"), T0 + dt.timedelta(minutes=4), "sweep-1")
    w.evaluate(sp(5, "alice@contoso.com"), T0 + dt.timedelta(minutes=5), "sweep-2")
    w.clock.current = T0 + dt.timedelta(minutes=10)
    return w


def stored_findings(w: World) -> list[FindingRecord]:
    return [FindingRecord.model_validate(d) for d in w.store.of_type(TENANT, "finding")]


# -- findings -------------------------------------------------------------------------------------------


def test_findings_default_to_open_and_accepted_newest_last_seen_first(world: World) -> None:
    answer = world.get("governance/findings")
    assert answer.status == 200, answer.body
    page = body(answer)
    expected = sorted(
        (f for f in stored_findings(world) if f.state != "resolved"),
        key=lambda f: (f.last_seen, f.id),
        reverse=True,
    )
    assert [f["id"] for f in page["items"]] == [f.id for f in expected]
    assert len(expected) == 5  # two each for 1 and 2, one for 3
    assert page["next"] is None
    assert all(set(item) == FINDING_FIELDS for item in page["items"])
    assert {f["object_id"] for f in page["items"]} == {guid(1), guid(2), guid(3)}
    resolved = body(world.get("governance/findings?state=resolved"))["items"]
    assert [(f["object_id"], f["validator_id"], f["state"]) for f in resolved] == [
        (guid(5), "notes-lists-owners", "resolved")
    ]


def test_findings_filters_combine(world: World) -> None:
    critical = body(world.get("governance/findings?severity=critical"))["items"]
    assert sorted(f["object_id"] for f in critical) == [guid(1), guid(2)]
    assert {f["validator_id"] for f in critical} == {"credential-expiry"}
    one = body(world.get(f"governance/findings?object={guid(1).upper()}&validator=notes-lists-owners"))[
        "items"
    ]
    assert [(f["object_id"], f["validator_id"]) for f in one] == [(guid(1), "notes-lists-owners")]
    none = body(world.get("governance/findings?validator=ownerless"))["items"]
    assert none == []


def test_findings_page_with_a_signed_continuation_bound_to_its_query(world: World) -> None:
    seen: list[str] = []
    path = "governance/findings?limit=2"
    pages = 0
    while True:
        page = body(world.get(path))
        pages += 1
        seen += [f["id"] for f in page["items"]]
        if page["next"] is None:
            break
        path = f"governance/findings?limit=2&continuation={page['next']}"
    all_open = body(world.get("governance/findings?limit=200"))["items"]
    assert seen == [f["id"] for f in all_open]
    assert (len(seen), pages) == (5, 3)
    first = body(world.get("governance/findings?limit=2"))["next"]
    other = world.get(f"governance/findings?limit=2&severity=critical&continuation={first}")
    assert refused_field(other) == "continuation"
    forged = world.get(f"governance/findings?limit=2&continuation={first[:-2]}xx")
    assert refused_field(forged) == "continuation"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("validator=nope", "validator"),
        ("severity=severe", "severity"),
        ("object=not-a-guid", "object"),
        ("object=" + guid(1) + "%0A", "object"),
        ("state=closed", "state"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("continuation=abc", "continuation"),
        ("page_size=10", "page_size"),
        ("state=open&state=resolved", "state"),
    ],
)
def test_findings_refuse_bad_filters_naming_the_field(world: World, query: str, field: str) -> None:
    assert refused_field(world.get(f"governance/findings?{query}")) == field


def test_the_summary_counts_open_findings_by_severity_and_validator(world: World) -> None:
    answer = world.get("governance/findings/summary")
    assert answer.status == 200, answer.body
    summary = body(answer)
    findings = stored_findings(world)
    open_ones = [f for f in findings if f.state == "open"]
    assert summary["by_severity"] == {
        s: sum(1 for f in open_ones if f.severity == s)
        for s in ("critical", "high", "medium", "low", "informational")
    }
    assert summary["by_validator"] == {
        v: sum(1 for f in open_ones if f.validator_id == v) for v in VALIDATOR_IDS
    }
    assert summary["by_state"] == {
        s: Counter(f.state for f in findings)[s] for s in ("open", "accepted", "resolved")
    }
    assert summary["objects_failing"] == 3
    assert (summary["by_state"]["open"], summary["by_state"]["resolved"]) == (5, 1)
    assert refused_field(world.get("governance/findings/summary?state=open")) == "state"


def test_summarize_counts_only_open_findings_per_severity() -> None:
    facts = [
        FindingFact(object_id=guid(1), validator_id="ownerless", severity="high", state="open"),
        FindingFact(object_id=guid(1), validator_id="ownerless", severity="high", state="accepted"),
        FindingFact(object_id=guid(2), validator_id="credential-expiry", severity="low", state="resolved"),
    ]
    summary = summarize(facts)
    assert summary.by_severity["high"] == 1
    assert summary.by_severity["low"] == 0
    assert summary.by_state == {"open": 1, "accepted": 1, "resolved": 1}
    assert summary.objects_failing == 1


# -- one object ----------------------------------------------------------------------------------------


def test_an_object_with_its_findings_exceptions_and_history(world: World) -> None:
    answer = world.get(f"governance/objects/{guid(5)}")
    assert answer.status == 200, answer.body
    detail = body(answer)
    assert set(detail) == {"object", "findings", "exceptions", "history"}
    assert set(detail["object"]) == OBJECT_FIELDS
    assert (detail["object"]["last_result"], detail["object"]["display_name"]) == ("pass", "App 5")
    assert detail["object"]["last_known_good"]["notes"] == "alice@contoso.com"
    assert [(f["validator_id"], f["state"]) for f in detail["findings"]] == [
        ("notes-lists-owners", "resolved")
    ]
    assert detail["exceptions"] == []
    history = detail["history"]
    assert Counter(h["action"] for h in history) == {"governance.evaluate": 2, "governance.notes.report": 1}
    evaluations = [h for h in history if h["action"] == "governance.evaluate"]
    assert [h["after"]["result"] for h in evaluations] == ["pass", "fail"]  # newest first
    assert [(h["at"], h["id"]) for h in history] == sorted(
        ((h["at"], h["id"]) for h in history), reverse=True
    )
    assert all(h["target_id"] == guid(5) for h in history)
    upper = world.get(f"governance/objects/{guid(5).upper()}")
    assert body(upper) == detail


def test_an_unknown_or_malformed_object_is_a_404(world: World) -> None:
    unknown = world.get(f"governance/objects/{guid(99)}")
    assert unknown.status == 404
    assert body(unknown)["type"].endswith("/not-found")
    for bad in ("not-a-guid", guid(1) + "\n", "..", guid(1)[:-1], f"{guid(1)}/x"):
        answer = world.get(f"governance/objects/{bad}")
        assert answer.status == 404, bad
        assert bad not in body(answer)["detail"]
    assert refused_field(world.get(f"governance/objects/{guid(1)}?x=1")) == "x"


# -- exceptions ----------------------------------------------------------------------------------------


def accept(
    object_id: str, validator: str = "credential-expiry", days: int = 30, reason: str = "vendor renews"
) -> dict[str, Any]:
    return {
        "object_id": object_id,
        "validator_id": validator,
        "reason": reason,
        "expires_at": utc_iso(T0 + dt.timedelta(days=days)),
    }


def test_accepting_a_risk_makes_findings_accepted_and_posting_again_replaces_it(world: World) -> None:
    created = world.post_exception(accept(guid(1).upper()))
    assert created.status == 201, created.body
    exception = body(created)
    ident = exception_id(TENANT, guid(1), "credential-expiry")
    assert (exception["id"], exception["object_id"], exception["active"]) == (ident, guid(1), True)
    assert exception["created_by"] == "root@contoso.com"
    assert created.headers["ETag"] == exception["etag"]
    findings = body(world.get(f"governance/findings?object={guid(1)}"))["items"]
    assert {(f["validator_id"], f["state"], f["exception_id"]) for f in findings} == {
        ("credential-expiry", "accepted", ident),
        ("notes-lists-owners", "open", None),
    }
    again = world.post_exception(accept(guid(1), reason="renewal booked", days=60))
    assert again.status == 200, again.body
    assert (body(again)["reason"], body(again)["id"]) == ("renewal booked", ident)
    listed = body(world.get("governance/exceptions"))["items"]
    assert [(e["id"], e["reason"], e["active"]) for e in listed] == [(ident, "renewal booked", True)]
    assert listed[0]["etag"] == again.headers["ETag"]
    assert body(world.get(f"governance/exceptions?object={guid(2)}"))["items"] == []
    detail = body(world.get(f"governance/objects/{guid(1)}"))
    assert [e["id"] for e in detail["exceptions"]] == [ident]
    assert detail["object"]["accepted_findings"] == 1
    assert detail["history"][0]["action"] == "governance.exception.accept"
    assert detail["history"][0]["actor"] == "root@contoso.com"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"expires_at": utc_iso(T0)}, "expires_at"),
        ({"expires_at": utc_iso(T0 + dt.timedelta(days=366))}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "0001-01-01T00:00:00Z"}, "expires_at"),
        ({"validator_id": "made-up"}, "validator_id"),
        ({"object_id": "not-a-guid"}, "object_id"),
        ({"object_id": 7}, "object_id"),
        ({"object_id": guid(1) + "\n"}, "object_id"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "x" * 1001}, "reason"),
        ({"reason": "a\x00b"}, "reason"),
        ({"extra": True}, "extra"),
    ],
)
def test_a_bad_exception_is_a_400_naming_the_field(world: World, change: dict[str, Any], field: str) -> None:
    before = dict(world.store.documents)
    assert refused_field(world.post_exception({**accept(guid(1)), **change})) == field
    assert world.store.documents == before


def test_exceptions_are_for_admins_and_known_objects(world: World) -> None:
    assert world.post_exception(accept(guid(1)), READER).status == 403
    unknown = world.post_exception(accept(guid(99)))
    assert unknown.status == 404
    assert world.store.of_type(TENANT, "exception") == []
    assert world.delete_exception(exception_id(TENANT, guid(1), "credential-expiry"), READER).status == 403


def test_revoking_honours_if_match_and_opens_the_findings_again(world: World) -> None:
    created = world.post_exception(accept(guid(2)))
    ident, etag = body(created)["id"], created.headers["ETag"]
    stale = world.delete_exception(ident, {**ADMIN, "If-Match": '"stale"'})
    assert stale.status == 412
    assert body(stale)["type"].endswith("/precondition-failed")
    malformed = world.delete_exception(ident, {**ADMIN, "If-Match": "unquoted"})
    assert refused_field(malformed) == "If-Match"
    assert len(world.store.of_type(TENANT, "exception")) == 1
    removed = world.delete_exception(ident, {**ADMIN, "If-Match": etag})
    assert (removed.status, removed.body) == (204, b"")
    assert world.store.of_type(TENANT, "exception") == []
    states = {
        f["validator_id"]: f["state"]
        for f in body(world.get(f"governance/findings?object={guid(2)}"))["items"]
    }
    assert states == {"credential-expiry": "open", "notes-lists-owners": "open"}
    assert world.delete_exception(ident).status == 404
    assert world.delete_exception("exc-" + "0" * 40).status == 404
    assert world.delete_exception("exc-" + "0" * 39 + "\n").status == 404
    assert (
        body(world.get(f"governance/objects/{guid(2)}"))["history"][0]["action"]
        == "governance.exception.revoke"
    )


def test_revoking_without_if_match(world: World) -> None:
    ident = body(world.post_exception(accept(guid(3), "notes-lists-owners")))["id"]
    assert world.delete_exception(ident).status == 204
    assert body(world.get("governance/exceptions"))["items"] == []


# -- discovery and activities ----------------------------------------------------------------------


def test_discovery_is_queued_with_its_activity_id_and_audited(world: World) -> None:
    answer = world.discover(b'{"full_seed": true}', {**ADMIN, **JSON})
    assert answer.status == 202, answer.body
    queued = body(answer)
    assert queued["full_seed"] is True
    assert is_governance_activity_id(queued["activity_id"])
    request = DiscoveryRequest.model_validate_json(world.queue.sent[0])
    assert (request.tenant_id, request.activity_id, request.trigger, request.full_seed) == (
        TENANT,
        queued["activity_id"],
        "request",
        True,
    )
    assert (request.requested_at, request.requested_by) == (utc_iso(world.clock.now()), "root@contoso.com")
    assert [d["action"] for d in world.api_audit.documents] == ["governance.discovery.request"]
    empty = world.discover(b"", ADMIN)
    assert empty.status == 202, empty.body
    assert body(empty)["full_seed"] is False
    assert body(empty)["activity_id"] != queued["activity_id"]
    assert len(world.queue.sent) == 2


def test_discovery_retried_with_one_idempotency_key_names_one_activity(world: World) -> None:
    headers = {**ADMIN, **JSON, "Idempotency-Key": "retry-1"}
    first = body(world.discover(b"{}", headers))
    second = body(world.discover(b"{}", headers))
    assert first == second
    assert len({DiscoveryRequest.model_validate_json(m).activity_id for m in world.queue.sent}) == 1


@pytest.mark.parametrize(
    ("raw", "field"),
    [(b'{"full_seed": "yes"}', "full_seed"), (b'{"full_seed": 1}', "full_seed"), (b'{"seed": true}', "seed")],
)
def test_discovery_refuses_bad_bodies_and_readers(world: World, raw: bytes, field: str) -> None:
    assert refused_field(world.discover(raw, {**ADMIN, **JSON})) == field
    assert world.discover(b"{}", {**READER, **JSON}).status == 403
    assert world.queue.sent == []


def test_activities_newest_first_by_kind(world: World) -> None:
    discovery = ActivityRecord(
        id=activity_id("discovery", TENANT, "run-1"),
        pk=TENANT,
        kind="discovery",
        trigger="timer",
        started_at=utc_iso(T0 + dt.timedelta(minutes=9)),
        status="succeeded",
        lock="acquired",
        counts=ActivityCounts(discovered=5),
    )
    world.activities.start(discovery)
    listed = body(world.get("governance/activities"))["items"]
    assert [a["kind"] for a in listed] == ["discovery", "evaluation", "evaluation"]
    assert listed[0]["counts"]["discovered"] == 5
    assert set(listed[0]) == {
        "id",
        "kind",
        "trigger",
        "started_at",
        "ended_at",
        "status",
        "lock",
        "counts",
        "errors",
        "details",
    }
    evaluations = body(world.get("governance/activities?kind=evaluation"))["items"]
    assert [a["id"] for a in evaluations] == [
        activity_id("evaluation", TENANT, "sweep-2"),
        activity_id("evaluation", TENANT, "sweep-1"),
    ]
    assert sum(a["counts"]["evaluated"] for a in evaluations) == 6
    assert len(body(world.get("governance/activities?limit=1"))["items"]) == 1
    for query, field in (("kind=sweep", "kind"), ("limit=0", "limit"), ("limit=101", "limit"), ("x=1", "x")):
        assert refused_field(world.get(f"governance/activities?{query}")) == field


def test_the_status_block_has_the_mode_and_the_last_five_activities(world: World) -> None:
    for n in range(6):
        world.activities.start(
            ActivityRecord(
                id=activity_id("discovery", TENANT, f"run-{n}"),
                pk=TENANT,
                kind="discovery",
                trigger="timer",
                started_at=utc_iso(T0 + dt.timedelta(hours=1, minutes=n)),
            )
        )
    status = world.api.status()
    assert status.mode == "ReportOnly"
    assert [a.id for a in status.activities] == [
        activity_id("discovery", TENANT, f"run-{n}") for n in (5, 4, 3, 2, 1)
    ]
    assert status.error is None


def test_an_unreadable_activity_store_is_reported_in_the_status_block() -> None:
    class Broken(MemoryActivityStore):
        def recent(self, tenant_id: str, kind: Any = None, limit: int = 50) -> list[ActivityRecord]:
            raise ConnectionError("cosmos unreachable\nsecond line")

    status = governance_status("Update", Broken(), TENANT)
    assert status == GovernanceStatus(
        mode="Update", activities=[], error="ConnectionError: cosmos unreachable"
    )
