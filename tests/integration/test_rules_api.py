"""The rule routes against Azurite and cosmosdb-server: listing the rules in force, editing the override
blob under its ETag (validation, lost races, roles, audit) and testing a rule against stored events
(shared/api/rules_api.py). Each test gets its own `config-<id>` blob container, so the real
`config/rules.yaml` other tests use is never touched."""

from __future__ import annotations

import datetime as dt
import json
import threading
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from azure.core.exceptions import ResourceNotFoundError
from azure.cosmos import ContainerProxy, PartitionKey
from azure.storage.blob import ContainerClient

from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_query import EventSearch, SensitivityPolicy
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard, ApiResponse
from shared.api.rules_api import MAX_SAVE_ATTEMPTS, RulesApi, rule_view
from shared.ingestion.event_store import EventStore
from shared.ingestion.events import partition_key
from shared.platform.clients import get_clients
from shared.platform.resources import CosmosContainers
from shared.rules.engine import BusinessHours
from shared.rules.model import parse_rule_file
from shared.rules.source import DEFAULT_RULES_FILE, RULES_BLOB, RuleSource, blob_reader
from tests.support.audit_records import delete_user_record, normalized, role_assignment_record
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
HOURS = BusinessHours.parse("08:00-18:00", "Mon-Fri", "Europe/London")
ADMIN = {"x-ms-client-principal": swa_principal(["admin"], user="root@contoso.com")}
PRIVACY_ADMIN = {"x-ms-client-principal": swa_principal(["admin", "privacy"], user="dpo@contoso.com")}
READER = {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")}
JSON_TYPE = "application/json"
DEFAULT_DOCUMENT = yaml.safe_load(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))
DEFAULT_RULE_COUNT = len(DEFAULT_DOCUMENT["rules"])
DEFAULT_IDS = [r["id"] for r in DEFAULT_DOCUMENT["rules"]]


def body(response: ApiResponse) -> Any:
    return json.loads(response.body)


@dataclass
class Corpus:
    tenant: str
    events_container: ContainerProxy
    events_container_name: str
    global_admin_ids: list[str]
    other_role_ids: list[str]
    deletion_ids: list[str]  # newest first: the four newest events of the tenant
    too_old_id: str


@pytest.fixture(scope="module")
def corpus(app_environment: dict[str, str]) -> Iterator[Corpus]:
    """Events of a tenant of its own, in an events container of its own (cosmosdb-server scans a whole
    container per query)."""
    clients = get_clients()
    spec = CosmosContainers.EVENTS
    name = f"events-rules-{uuid.uuid4().hex[:8]}"
    container = clients.cosmos_database.create_container(
        id=name,
        partition_key=PartitionKey(path=spec.partition_key_path),
        indexing_policy=spec.indexing_policy(),
    )
    tenant = f"rules-{uuid.uuid4().hex[:10]}"

    def event(record: dict[str, Any]) -> dict[str, Any]:
        document = normalized(record, tenant)
        assert document["pk"] == partition_key(tenant, document["timestamp"])
        return document

    hours = dt.timedelta(hours=1)
    global_admins = [
        event(role_assignment_record(NOW - 1 * hours, "ana@contoso.com", "eve@contoso.com")),
        event(role_assignment_record(NOW - 2 * hours, "bob@contoso.com", "mal@contoso.com")),
        event(role_assignment_record(NOW - dt.timedelta(days=25), "ana@contoso.com", "zed@contoso.com")),
    ]
    other_roles = [
        event(
            role_assignment_record(
                NOW - 4 * hours, "ana@contoso.com", "x@contoso.com", "Exchange Administrator"
            )
        ),
        event(
            role_assignment_record(
                NOW - 5 * hours, "ana@contoso.com", "y@contoso.com", "Helpdesk Administrator"
            )
        ),
    ]
    minute = dt.timedelta(minutes=1)
    deletions = [
        event(delete_user_record(NOW - (10 * i) * minute, "bob@contoso.com", f"user{i}@contoso.com"))
        for i in range(1, 5)
    ]
    too_old = event(role_assignment_record(NOW - dt.timedelta(days=40), "ana@contoso.com", "old@contoso.com"))
    store = EventStore(container, clients.cosmos_container(CosmosContainers.FACETS.name), 4)
    store.write_events([*global_admins, *other_roles, *deletions, too_old])
    yield Corpus(
        tenant=tenant,
        events_container=container,
        events_container_name=name,
        global_admin_ids=[e["id"] for e in global_admins],
        other_role_ids=[e["id"] for e in other_roles],
        deletion_ids=[e["id"] for e in deletions],
        too_old_id=too_old["id"],
    )
    clients.cosmos_database.delete_container(name)


@pytest.fixture
def config(app_environment: dict[str, str]) -> Iterator[ContainerClient]:
    container = get_clients().blob_service.get_container_client(f"config-{uuid.uuid4().hex[:12]}")
    container.create_container()
    yield container
    container.delete_container()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


class Harness:
    def __init__(
        self,
        corpus: Corpus,
        config: ContainerClient,
        clock: ManualClock,
        *,
        sensitivity: SensitivityPolicy | None = None,
        container: Any = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.audit_tenant = f"audit-{uuid.uuid4().hex[:10]}"  # this harness's audit records only
        self.source = RuleSource(HOURS, clock, override=blob_reader(config), ttl_seconds=3600)
        guard = ApiGuard(
            Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()),
            sensitivity or SensitivityPolicy(),
        )
        self.audit_container = get_clients().cosmos_container(CosmosContainers.AUDIT.name)
        self.api = RulesApi(
            guard,
            self.source,
            container if container is not None else config,
            EventSearch(
                corpus.events_container, ContinuationSigner(b"rules-test-secret-0123456789"), corpus.tenant
            ),
            AuditLog(self.audit_container, self.audit_tenant, clock),
            HOURS,
            clock,
        )

    def get(self, headers: dict[str, str] = READER, url: str = "http://h/api/rules") -> ApiResponse:
        return self.api.list_rules(url, headers, "/api/rules")

    def put(
        self, rule_id: str, document: Any, headers: dict[str, str] = ADMIN, content_type: str = JSON_TYPE
    ) -> ApiResponse:
        raw = document if isinstance(document, bytes) else json.dumps(document).encode()
        headers = {**headers, "Content-Type": content_type}
        return self.api.put_rule(
            rule_id, f"http://h/api/rules/{rule_id}", raw, headers, f"/api/rules/{rule_id}"
        )

    def test(self, document: Any, headers: dict[str, str] = ADMIN) -> ApiResponse:
        raw = json.dumps(document).encode()
        headers = {**headers, "Content-Type": JSON_TYPE}
        return self.api.test_rule("http://h/api/rules/test", raw, headers, "/api/rules/test")

    def blob_text(self) -> str | None:
        try:
            return self.config.get_blob_client(RULES_BLOB).download_blob(encoding="utf-8").readall()
        except ResourceNotFoundError:
            return None

    def blob_etag(self) -> str | None:
        try:
            return str(self.config.get_blob_client(RULES_BLOB).get_blob_properties().etag)
        except ResourceNotFoundError:
            return None

    def fresh_rules(self) -> dict[str, Any]:
        """The rules a new RuleSource (another instance) reads from the blob, by id."""
        source = RuleSource(HOURS, self.clock, override=blob_reader(self.config))
        rules = source.current()
        assert source.last_error is None
        return {"origin": rules.origin, "rules": {r.id: r for r in rules.rules}, "set": rules}

    def audit_records(self, action: str) -> list[dict[str, Any]]:
        return list(
            self.audit_container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.action = @action",
                parameters=[
                    {"name": "@pk", "value": self.audit_tenant},
                    {"name": "@action", "value": action},
                ],
                partition_key=self.audit_tenant,
            )
        )


@pytest.fixture
def harness(corpus: Corpus, config: ContainerClient, clock: ManualClock) -> Harness:
    return Harness(corpus, config, clock)


def default_view(rule_id: str) -> dict[str, Any]:
    rule_file = parse_rule_file(DEFAULT_DOCUMENT)
    return rule_view(next(r for r in rule_file.rules if r.id == rule_id))


# --- GET /api/rules ----------------------------------------------------------------------------


def test_get_lists_the_21_default_rules(harness: Harness) -> None:
    response = harness.get()
    assert response.status == 200
    document = body(response)
    assert document["origin"] == "file:default_rules.yaml"
    assert document["overridden"] is False
    assert document["last_error"] is None
    assert document["count"] == DEFAULT_RULE_COUNT
    assert [r["id"] for r in document["rules"]] == DEFAULT_IDS
    first = document["rules"][0]
    assert first == default_view("entra.global-admin-added")
    assert first["severity"] == "critical"
    assert first["mitre"] == ["T1098.003"]
    assert first["enabled"] is True
    assert first["when"]["all"][0] == {"field": "operation", "in": "$role_assignment_operations"}
    bulk = next(r for r in document["rules"] if r["id"] == "entra.bulk-user-deletion")
    assert bulk["threshold"] == {"count": 10, "window_minutes": 10.0}
    assert bulk["group_by"] == ["actor.upn|actor.id"]


def test_get_refuses_unknown_query_parameters_and_unauthenticated_callers(harness: Harness) -> None:
    response = harness.get(url="http://h/api/rules?severity=high")
    assert response.status == 400
    assert body(response)["errors"][0]["field"] == "severity"
    assert harness.get(headers={}).status == 401


def test_get_reports_a_refused_override(harness: Harness) -> None:
    harness.config.get_blob_client(RULES_BLOB).upload_blob(b"version: 1\nrules: [{id: x}]\n")
    document = body(harness.get())
    assert document["origin"] == "file:default_rules.yaml"
    assert document["count"] == DEFAULT_RULE_COUNT
    assert "rule 'x'" in document["last_error"]


# --- PUT /api/rules/{id} --------------------------------------------------------------------------


def test_put_disables_a_rule_and_a_fresh_rule_source_sees_it(harness: Harness) -> None:
    assert harness.blob_text() is None
    response = harness.put("entra.app-registered", {"enabled": False})
    assert response.status == 200
    saved = body(response)
    assert saved == {**default_view("entra.app-registered"), "enabled": False}

    fresh = harness.fresh_rules()
    assert fresh["origin"] == "blob:rules.yaml"
    assert list(fresh["rules"]) == DEFAULT_IDS
    assert fresh["rules"]["entra.app-registered"].enabled is False
    assert fresh["set"].get("entra.app-registered") is None  # not compiled: it no longer alerts
    default_rules = {r.id: r for r in parse_rule_file(DEFAULT_DOCUMENT).rules}
    for rule_id in DEFAULT_IDS:
        if rule_id != "entra.app-registered":
            assert fresh["rules"][rule_id] == default_rules[rule_id], rule_id

    stored = yaml.safe_load(harness.blob_text() or "")
    assert stored["lists"] == DEFAULT_DOCUMENT["lists"]
    assert list(stored) == ["version", "lists", "rules"]

    # the API's own rule source was invalidated: the change is in force at once
    listed = body(harness.get())
    assert listed["origin"] == "blob:rules.yaml"
    assert listed["overridden"] is True
    assert next(r for r in listed["rules"] if r["id"] == "entra.app-registered")["enabled"] is False

    # and enabled again
    assert harness.put("entra.app-registered", {"id": "entra.app-registered", "enabled": True}).status == 200
    assert harness.fresh_rules()["rules"]["entra.app-registered"].enabled is True


def test_put_replaces_a_rule_and_adds_a_new_one(harness: Harness) -> None:
    changed = {**default_view("entra.oauth-consent"), "severity": "critical", "title": "Consent granted"}
    del changed["id"]
    response = harness.put("entra.oauth-consent", changed)
    assert response.status == 200
    assert body(response)["severity"] == "critical"

    new_rule = {
        "title": "User deleted",
        "description": "Any user deletion.",
        "severity": "low",
        "group_by": ["actor.upn"],
        "when": {"all": [{"field": "operation", "eq": "Delete user"}, {"field": "result", "neq": "failure"}]},
    }
    response = harness.put("custom.user-deleted", new_rule)
    assert response.status == 200
    assert body(response)["id"] == "custom.user-deleted"

    fresh = harness.fresh_rules()
    assert list(fresh["rules"]) == [*DEFAULT_IDS, "custom.user-deleted"]
    assert fresh["rules"]["entra.oauth-consent"].severity == "critical"
    assert fresh["rules"]["entra.oauth-consent"].title == "Consent granted"
    compiled = fresh["set"].get("custom.user-deleted")
    assert compiled is not None
    assert compiled.test({"operation": "Delete user", "result": "success"})
    assert not compiled.test({"operation": "Delete user", "result": "failure"})
    assert body(harness.get())["count"] == DEFAULT_RULE_COUNT + 1


def test_an_invalid_put_names_the_fields_and_leaves_the_blob_alone(harness: Harness) -> None:
    broken = {
        **default_view("entra.app-registered"),
        "severity": "urgent",
        "when": {"field": "actor.upn", "regex": "(admin"},
    }
    response = harness.put("entra.app-registered", broken)
    assert response.status == 400
    problem = body(response)
    assert [e["field"] for e in problem["errors"]] == ["severity", "when.regex"]
    assert problem["type"].endswith("/invalid-rule")
    assert harness.blob_text() is None  # nothing was created

    assert harness.put("entra.app-registered", {"enabled": False}).status == 200
    etag = harness.blob_etag()
    text = harness.blob_text()
    assert etag is not None
    view = {k: v for k, v in default_view("entra.app-registered").items() if k != "id"}
    for rule_id, document, field in [
        ("entra.app-registered", broken, "severity"),
        ("custom.new", {"title": "t", "description": "d", "severity": "low"}, "when"),
        ("custom.new", {**view, "id": "custom.new", "colour": "red"}, "colour"),
        ("custom.list", {**view, "when": {"field": "x", "in": "$nope"}}, "when.in"),
        ("entra.app-registered", {"id": "entra.other", "enabled": False}, "id"),
        ("entra.app-registered", {"enabled": "no"}, "enabled"),
        ("Bad Id", view, "id"),
        ("entra.app-registered", [1, 2], "body"),
    ]:
        response = harness.put(rule_id, document)
        assert response.status == 400, (rule_id, document)
        assert field in [e["field"] for e in body(response)["errors"]], body(response)
    assert harness.put("entra.app-registered", b"{not json").status == 400
    for refused in ("application/x-www-form-urlencoded", "text/plain", ""):  # "": no label at all
        assert harness.put("entra.app-registered", {"enabled": False}, content_type=refused).status == 415
    assert harness.blob_etag() == etag
    assert harness.blob_text() == text


def test_enabling_an_unknown_rule_is_not_found(harness: Harness) -> None:
    response = harness.put("custom.nothing-here", {"enabled": True})
    assert response.status == 404
    assert harness.blob_text() is None


def test_a_reader_may_not_put(harness: Harness) -> None:
    response = harness.put("entra.app-registered", {"enabled": False}, headers=READER)
    assert response.status == 403
    assert body(response)["detail"] == "this needs the AOC.Admin role"
    assert harness.put("entra.app-registered", {"enabled": False}, headers={}).status == 401
    assert harness.blob_text() is None


def test_put_is_audited_with_before_and_after(harness: Harness) -> None:
    assert harness.audit_records("rule.update") == []
    headers = {**ADMIN, "Idempotency-Key": uuid.uuid4().hex}
    assert harness.put("intune.device-wiped", {"enabled": False}, headers).status == 200
    records = harness.audit_records("rule.update")
    assert len(records) == 1
    record = records[0]
    assert record["actor"] == "root@contoso.com"
    assert record["auth"] == "swa"
    assert record["target_type"] == "rule"
    assert record["target_id"] == "intune.device-wiped"
    assert record["before"]["id"] == "intune.device-wiped"
    assert record["before"].get("enabled", True) is True
    assert record["after"] == {**default_view("intune.device-wiped"), "enabled": False}
    assert record["at"] == "2026-11-20T12:00:00.000Z"

    # a new rule has no before
    new_rule = {
        "title": "t",
        "description": "d",
        "severity": "low",
        "when": {"field": "operation", "eq": "X"},
    }
    assert harness.put("custom.audited", new_rule).status == 200
    created = [r for r in harness.audit_records("rule.update") if r["target_id"] == "custom.audited"]
    assert len(created) == 1
    assert created[0]["before"] is None
    assert created[0]["after"]["when"] == {"field": "operation", "eq": "X"}

    # refused writes are not recorded
    harness.put("custom.audited", {**new_rule, "severity": "urgent"})
    harness.put("custom.audited", new_rule, headers=READER)
    assert len(harness.audit_records("rule.update")) == 2


# --- lost races ---------------------------------------------------------------------------------------


class RacingContainer:
    """A container whose rule blob another writer changes right after each of our first `races` reads."""

    def __init__(self, real: ContainerClient, interfere: Callable[[], object], races: int) -> None:
        self.real = real
        self.interfere = interfere
        self.races = races
        self.reads = 0

    def get_blob_client(self, name: str) -> Any:
        return RacingBlob(self, self.real.get_blob_client(name))

    def after_read(self) -> None:
        self.reads += 1
        if self.reads <= self.races:
            self.interfere()


class RacingBlob:
    def __init__(self, owner: RacingContainer, blob: Any) -> None:
        self.owner = owner
        self.blob = blob

    def download_blob(self, **kwargs: Any) -> Any:
        try:
            downloader = self.blob.download_blob(**kwargs)
        except ResourceNotFoundError:
            self.owner.after_read()
            raise
        text = downloader.readall()
        properties = downloader.properties
        self.owner.after_read()
        return types.SimpleNamespace(readall=lambda: text, properties=properties)

    def upload_blob(self, *args: Any, **kwargs: Any) -> Any:
        return self.blob.upload_blob(*args, **kwargs)


@pytest.mark.parametrize("existing", [False, True], ids=["create-race", "etag-race"])
def test_a_lost_race_is_retried_and_neither_change_is_lost(
    corpus: Corpus, config: ContainerClient, clock: ManualClock, existing: bool
) -> None:
    other = Harness(corpus, config, clock)
    if existing:
        assert other.put("entra.named-location-changed", {"enabled": False}).status == 200
    racing = RacingContainer(config, lambda: other.put("intune.device-wiped", {"enabled": False}), races=1)
    harness = Harness(corpus, config, clock, container=racing)

    response = harness.put("entra.app-registered", {"enabled": False})

    assert response.status == 200
    assert racing.reads == 2  # read, lost the race, read again
    rules = harness.fresh_rules()["rules"]
    assert rules["entra.app-registered"].enabled is False
    assert rules["intune.device-wiped"].enabled is False  # the other writer's change survived
    assert rules["entra.named-location-changed"].enabled is (not existing)
    assert rules["entra.oauth-consent"].enabled is True


def test_a_race_lost_every_time_is_a_conflict(
    corpus: Corpus, config: ContainerClient, clock: ManualClock
) -> None:
    other = Harness(corpus, config, clock)
    flip = {"value": False}

    def interfere() -> None:
        flip["value"] = not flip["value"]
        other.put("intune.device-wiped", {"enabled": flip["value"]})

    racing = RacingContainer(config, interfere, races=1000)
    harness = Harness(corpus, config, clock, container=racing)

    response = harness.put("entra.app-registered", {"enabled": False})

    assert response.status == 409
    assert body(response)["type"].endswith("/conflict")
    assert racing.reads == MAX_SAVE_ATTEMPTS
    assert harness.fresh_rules()["rules"]["entra.app-registered"].enabled is True
    assert harness.audit_records("rule.update") == []  # the refused write is not recorded
    assert len(other.audit_records("rule.update")) == MAX_SAVE_ATTEMPTS  # the other writer's are


def test_concurrent_puts_of_different_rules_all_land(harness: Harness) -> None:
    targets = ["entra.app-registered", "intune.device-wiped", "entra.oauth-consent"]
    results: dict[str, int] = {}

    def put(rule_id: str) -> None:
        results[rule_id] = harness.put(rule_id, {"enabled": False}).status

    threads = [threading.Thread(target=put, args=(rule_id,)) for rule_id in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rules = harness.fresh_rules()["rules"]
    for rule_id in targets:
        # each lost race means another writer saved and is done, so with 3 writers nobody needs more
        # than 3 of the MAX_SAVE_ATTEMPTS attempts; without the ETag condition a change would be lost
        assert results[rule_id] == 200, results
        assert rules[rule_id].enabled is False, rule_id


# --- POST /api/rules/test ------------------------------------------------------------------------------


def test_a_rule_is_tested_against_the_newest_events(harness: Harness, corpus: Corpus) -> None:
    rule = default_view("entra.global-admin-added")
    response = harness.test({"rule": rule})
    assert response.status == 200
    result = body(response)
    assert result["rule_id"] == "entra.global-admin-added"
    assert result["evaluated"] == 9  # the 40-day-old event is outside the 30-day window
    assert result["matched"] == 3
    assert [m["id"] for m in result["matches"]] == corpus.global_admin_ids  # newest first
    assert result["matches"][0]["actor"] == "ana@contoso.com"
    assert result["matches"][0]["operation"] == "Add member to role"
    assert result["matches"][0]["group"] == {"actor.upn|actor.id": "ana@contoso.com"}
    assert result["truncated"] is False
    assert result["threshold_evaluated"] is False
    assert result["note"] is None
    assert harness.blob_text() is None  # nothing saved

    admin_roles = body(harness.test({"rule": default_view("entra.admin-role-assigned")}))
    assert [m["id"] for m in admin_roles["matches"]] == corpus.other_role_ids


def test_last_limits_the_events_evaluated(harness: Harness, corpus: Corpus) -> None:
    rule = {
        "title": "Deletes",
        "description": "d",
        "severity": "low",
        "when": {"field": "operation", "eq": "Delete user"},
    }
    result = body(harness.test({"rule": rule, "last": 2}))
    assert result["evaluated"] == 2
    assert [m["id"] for m in result["matches"]] == corpus.deletion_ids[:2]
    assert result["rule_id"] == "rule.under-test"
    everything = body(harness.test({"rule": {**rule, "id": "custom.deletes"}, "last": 5000}))
    assert everything["evaluated"] == 9
    assert everything["matched"] == 4


def test_a_threshold_rule_lists_each_matching_event(harness: Harness, corpus: Corpus) -> None:
    result = body(harness.test({"rule": default_view("entra.bulk-user-deletion")}))
    assert result["matched"] == 4
    assert [m["id"] for m in result["matches"]] == corpus.deletion_ids
    assert result["threshold_evaluated"] is False
    assert "threshold" in result["note"]
    assert "10" in result["note"]


def test_rule_tests_honour_the_privacy_policy(
    corpus: Corpus, config: ContainerClient, clock: ManualClock
) -> None:
    harness = Harness(corpus, config, clock, sensitivity=SensitivityPolicy(operations=["Delete user"]))
    rule = {**default_view("entra.bulk-user-deletion"), "threshold": None}
    hidden = body(harness.test({"rule": rule}))
    assert hidden["evaluated"] == 5
    assert hidden["matched"] == 0
    seen = body(harness.test({"rule": rule}, headers=PRIVACY_ADMIN))
    assert seen["evaluated"] == 9
    assert [m["id"] for m in seen["matches"]] == corpus.deletion_ids


def test_an_invalid_rule_test_is_a_400_and_readers_may_not_test(harness: Harness) -> None:
    broken = {"title": "t", "description": "d", "severity": "urgent", "when": {"field": "x", "in": "$nope"}}
    response = harness.test({"rule": broken})
    assert response.status == 400
    assert {e["field"] for e in body(response)["errors"]} == {"rule.severity"}
    no_list = harness.test({"rule": {**broken, "severity": "low"}})
    assert [e["field"] for e in body(no_list)["errors"]] == ["rule.when.in"]
    for document, field in [({"rule": broken, "last": 0}, "last"), ({"rule": broken, "extra": 1}, "extra")]:
        response = harness.test(document)
        assert response.status == 400
        assert body(response)["errors"][0]["field"] == field
    assert harness.test({"rule": default_view("entra.app-registered")}, headers=READER).status == 403
