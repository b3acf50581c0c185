"""The rule routes against Azurite and cosmosdb-server: listing the rules in force with their 7-day
activity, editing the override blob under its ETag (validation, lost races, roles, audit), editing one
rule as YAML under its own version (If-Match) and testing a rule against stored events
(shared/api/rules_api.py, shared/api/rule_activity.py). Each test gets its own `config-<id>` blob
container, so the real `config/rules.yaml` other tests use is never touched."""

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

from shared.alerts.ledger import MatchLedger, MatchRow
from shared.alerts.store import AlertStore
from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_query import EventSearch, SensitivityPolicy
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard, ApiResponse
from shared.api.rule_activity import RuleActivity
from shared.api.rules_api import MAX_SAVE_ATTEMPTS, RulesApi, rule_view
from shared.ingestion.event_store import EventStore
from shared.ingestion.events import partition_key
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers, Tables
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
        activity: RuleActivity | None = None,
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
            activity=activity,
        )

    def get(self, headers: dict[str, str] = READER, url: str = "http://h/api/rules") -> ApiResponse:
        return self.api.list_rules(url, headers, "/api/rules")

    def get_one(self, rule_id: str, headers: dict[str, str] = READER) -> ApiResponse:
        return self.api.get_rule(rule_id, f"http://h/api/rules/{rule_id}", headers, f"/api/rules/{rule_id}")

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


def view_of(answer: dict[str, Any]) -> dict[str, Any]:
    """A rule as the API answers it without what it adds to the rule itself (version, YAML, activity)."""
    return {k: v for k, v in answer.items() if k not in ("etag", "yaml", "last_7_days")}


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
    assert view_of(first) == default_view("entra.global-admin-added")
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
    assert view_of(saved) == {**default_view("entra.app-registered"), "enabled": False}

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


# --- one rule: its version, its YAML, If-Match -----------------------------------------------------


def test_get_one_rule_gives_its_version_and_yaml(harness: Harness) -> None:
    response = harness.get_one("entra.app-registered")
    assert response.status == 200
    detail = body(response)
    view = default_view("entra.app-registered")
    assert {k: v for k, v in detail.items() if k not in ("etag", "yaml")} == view
    assert response.headers["ETag"] == detail["etag"]
    assert yaml.safe_load(detail["yaml"])["when"] == view["when"]
    listed = {r["id"]: r for r in body(harness.get())["rules"]}
    assert listed["entra.app-registered"]["etag"] == detail["etag"]
    assert listed["entra.app-registered"]["last_7_days"] is None  # no activity reader wired here
    assert len({r["etag"] for r in listed.values()}) == len(listed)

    missing = harness.get_one("custom.nothing-here")
    assert missing.status == 404
    assert harness.get_one("entra.app-registered", headers={}).status == 401


def test_put_with_if_match_saves_over_that_version_only(harness: Harness) -> None:
    first = body(harness.get_one("entra.app-registered"))["etag"]
    saved = harness.put("entra.app-registered", {"enabled": False}, {**ADMIN, "If-Match": first})
    assert saved.status == 200
    second = body(saved)["etag"]
    assert second != first
    assert saved.headers["ETag"] == second
    assert body(harness.get_one("entra.app-registered"))["etag"] == second

    # another admin, still holding the first version, is refused and changes nothing
    text = harness.blob_text()
    stale = harness.put("entra.app-registered", {"enabled": True}, {**ADMIN, "If-Match": first})
    assert stale.status == 412  # Precondition Failed, as every write with a stale If-Match
    problem = body(stale)
    assert (problem["status"], problem["title"]) == (412, "Precondition Failed")
    assert problem["type"].endswith("/rule-changed")
    assert "entra.app-registered" in problem["detail"]
    assert harness.blob_text() == text
    assert len(harness.audit_records("rule.update")) == 1

    # a change of another rule does not move this rule's version
    assert harness.put("intune.device-wiped", {"enabled": False}).status == 200
    assert body(harness.get_one("entra.app-registered"))["etag"] == second
    edited = {**default_view("entra.app-registered"), "enabled": False, "title": "Apps"}
    again = harness.put("entra.app-registered", edited, {**ADMIN, "If-Match": f'W/"x", {second}'})
    assert again.status == 200
    assert body(again)["title"] == "Apps"
    assert harness.put("entra.app-registered", {"enabled": True}, {**ADMIN, "If-Match": "*"}).status == 200

    # a weak tag never matches; a new rule has no version to match; a malformed header is a 400
    weak = harness.put("entra.app-registered", {"enabled": False}, {**ADMIN, "If-Match": f"W/{second}"})
    assert weak.status == 412
    new_rule = {
        "title": "t",
        "description": "d",
        "severity": "low",
        "when": {"field": "operation", "eq": "X"},
    }
    assert harness.put("custom.new", new_rule, {**ADMIN, "If-Match": "*"}).status == 412
    assert harness.put("custom.unknown", {"enabled": False}, {**ADMIN, "If-Match": "*"}).status == 404
    malformed = harness.put("entra.app-registered", {"enabled": False}, {**ADMIN, "If-Match": "abc"})
    assert malformed.status == 400
    assert body(malformed)["errors"][0]["field"] == "If-Match"
    assert harness.fresh_rules()["rules"]["entra.app-registered"].enabled is True


def test_the_version_check_is_made_against_the_blob_not_a_cached_copy(
    corpus: Corpus, config: ContainerClient, clock: ManualClock
) -> None:
    """Two API instances: each caches the rules for an hour, yet a read gives the version in the blob,
    and a save from a stale read is refused whichever instance saved last."""
    one, two = Harness(corpus, config, clock), Harness(corpus, config, clock)
    version = body(one.get_one("entra.oauth-consent"))["etag"]
    assert body(two.get())["rules"][0]["etag"]  # two has read (and cached) the rules too
    assert two.put("entra.oauth-consent", {"enabled": False}, {**ADMIN, "If-Match": version}).status == 200
    assert one.put("entra.oauth-consent", {"enabled": True}, {**ADMIN, "If-Match": version}).status == 412
    current = body(one.get_one("entra.oauth-consent"))
    assert current["enabled"] is False
    assert current["etag"] != version
    listed = next(r for r in body(one.get())["rules"] if r["id"] == "entra.oauth-consent")
    assert listed["etag"] == current["etag"]
    assert (
        one.put("entra.oauth-consent", {"enabled": True}, {**ADMIN, "If-Match": current["etag"]}).status
        == 200
    )


BAD_REGEX_YAML = """\
title: Admin sign-ins
description: Sign-ins by admin accounts.
severity: medium
mitre: [T1078]
group_by: ["actor.upn|actor.id"]
group_minutes: 90
when:
  all:
    - {field: operation, eq: Delete user}
    - field: actor.upn
      regex: "(bob"
"""


def test_put_takes_the_rule_as_yaml_and_places_each_problem_on_its_line(harness: Harness) -> None:
    response = harness.put("custom.yaml-rule", {"yaml": BAD_REGEX_YAML})
    assert response.status == 400
    problem = body(response)
    assert problem["type"].endswith("/invalid-rule")
    assert [(e["field"], e["line"], e["column"]) for e in problem["errors"]] == [("when.all[1].regex", 11, 7)]
    assert "invalid regex" in problem["errors"][0]["message"]
    assert harness.blob_text() is None

    fixed = BAD_REGEX_YAML.replace('"(bob"', '"^bob@"')
    response = harness.put("custom.yaml-rule", {"yaml": fixed})
    assert response.status == 200
    saved = body(response)
    assert saved["id"] == "custom.yaml-rule"
    assert saved["group_minutes"] == 90  # kept, not dropped by the canonical form
    assert saved["when"]["all"][1] == {"field": "actor.upn", "regex": "^bob@"}
    assert yaml.safe_load(saved["yaml"]) == {
        "id": "custom.yaml-rule",
        **{k: v for k, v in yaml.safe_load(fixed).items()},
        "enabled": True,
    } | {"when": saved["when"]}
    rule = harness.fresh_rules()["rules"]["custom.yaml-rule"]
    assert rule.group_minutes == 90

    # the text sent back as it came (with its id) saves the same rule: same version
    again = harness.put("custom.yaml-rule", {"yaml": saved["yaml"]}, {**ADMIN, "If-Match": saved["etag"]})
    assert again.status == 200
    assert body(again)["etag"] == saved["etag"]
    # an enabled-only YAML toggles
    off = harness.put("custom.yaml-rule", {"yaml": "enabled: false\n"}, {**ADMIN, "If-Match": saved["etag"]})
    assert body(off)["enabled"] is False
    assert body(off)["title"] == "Admin sign-ins"


@pytest.mark.parametrize(
    ("document", "field", "line"),
    [
        ({"yaml": "title: [unclosed\n"}, "yaml", 2),
        ({"yaml": "- a\n- b\n"}, "yaml", 1),
        ({"yaml": "id: custom.other\ntitle: t\n"}, "id", 1),
        ({"yaml": "title: t\nenabled: maybe\n"}, "enabled", None),
        ({"yaml": "enabled: maybe\n"}, "enabled", 1),
        ({"yaml": "title: t\n", "title": "t"}, "yaml", None),
        ({"yaml": 5}, "yaml", None),
        ({"yaml": "when:\n  field: x\n  eq: .inf\n"}, "yaml", 3),
        ({"yaml": "title: 2026-02-31\n"}, "yaml", None),
    ],
)
def test_unusable_rule_yaml_is_a_400_at_its_line(
    harness: Harness, document: dict[str, Any], field: str, line: int | None
) -> None:
    response = harness.put("custom.yaml-rule", document)
    assert response.status == 400, body(response)
    errors = body(response)["errors"]
    assert field in [e["field"] for e in errors], errors
    if line is not None:
        assert next(e for e in errors if e["field"] == field)["line"] == line, errors
    assert harness.blob_text() is None


def test_a_rule_under_test_may_come_as_yaml(harness: Harness, corpus: Corpus) -> None:
    text = "title: Deletes\ndescription: d\nseverity: low\nwhen: {field: operation, eq: Delete user}\n"
    result = body(harness.test({"yaml": text, "last": 5000}))
    assert [m["id"] for m in result["matches"]] == corpus.deletion_ids
    broken = harness.test({"yaml": BAD_REGEX_YAML})
    assert broken.status == 400
    assert [(e["field"], e["line"]) for e in body(broken)["errors"]] == [("yaml.when.all[1].regex", 11)]
    syntax = harness.test({"yaml": "title: 'open\n"})
    assert body(syntax)["errors"][0]["field"] == "yaml"
    for neither_or_both in ({"last": 5}, {"yaml": text, "rule": {"title": "t"}}):
        response = harness.test(neither_or_both)
        assert response.status == 400
        assert body(response)["errors"][0]["field"] == "rule"


# --- GET /api/rules: the last 7 days --------------------------------------------------------------


def _alert(tenant: str, rule_id: str, first_seen: dt.datetime, service: str = "Directory") -> dict[str, Any]:
    return {
        "id": f"alert-{uuid.uuid4().hex}",
        "pk": tenant,
        "type": "alert",
        "rule_id": rule_id,
        "status": "open",
        "severity": "high",
        "first_seen": utc_iso(first_seen),
        "last_seen": utc_iso(first_seen),
        "sample": {"service": service, "operation": "Add member to role"},
    }


def test_each_rule_carries_its_matches_and_alerts_of_the_last_7_days(
    corpus: Corpus, config: ContainerClient, clock: ManualClock
) -> None:
    clients = get_clients()
    tenant = f"activity-{uuid.uuid4().hex[:10]}"
    ledger = MatchLedger(clients.table(Tables.ALERT_MATCHES))
    alerts = clients.cosmos_container(CosmosContainers.ALERTS.name)
    day = dt.timedelta(days=1)

    def rows(*ages: dt.timedelta) -> list[MatchRow]:
        return [MatchRow(utc_iso(NOW - age), f"entra_audit:e-{uuid.uuid4().hex}", "p") for age in ages]

    ledger.record(tenant, "entra.global-admin-added", "ana", rows(day, 2 * day, 8 * day))
    ledger.record(tenant, "entra.global-admin-added", "bob", rows(6 * day))
    ledger.set_active_alert(tenant, "entra.global-admin-added", "ana", "alert-x")  # not a match
    ledger.record(tenant, "entra.app-registered", "g", rows(dt.timedelta(hours=1)))
    ledger.record(f"{tenant}x", "entra.app-registered", "g", rows(day))  # another tenant
    ledger.record(tenant, "custom.deleted-rule", "g", rows(day))  # a rule no longer in the file
    store = AlertStore(alerts)
    store.create(_alert(tenant, "entra.global-admin-added", NOW - day))
    store.create(_alert(tenant, "entra.global-admin-added", NOW - 6 * day, service="Exchange"))
    store.create(_alert(tenant, "entra.global-admin-added", NOW - 9 * day))
    store.create(_alert(f"{tenant}x", "entra.app-registered", NOW - day))
    suppression = {**_alert(tenant, "entra.app-registered", NOW - day), "type": "suppression"}
    store.create(suppression)

    activity = RuleActivity(ledger, alerts, tenant, clock)
    harness = Harness(
        corpus, config, clock, activity=activity, sensitivity=SensitivityPolicy(services=["Exchange"])
    )
    document = body(harness.get(headers=PRIVACY_ADMIN))
    assert document["activity_since"] == utc_iso(NOW - 7 * day)
    counts = {r["id"]: r["last_7_days"] for r in document["rules"]}
    assert counts["entra.global-admin-added"] == {"matches": 3, "alerts": 2}
    assert counts["entra.app-registered"] == {"matches": 1, "alerts": 0}
    assert counts["intune.device-wiped"] == {"matches": 0, "alerts": 0}
    assert set(counts) == set(DEFAULT_IDS)

    # without AOC.Privacy: hidden alerts are not counted, and matches (whose service the ledger does
    # not know) not at all
    hidden = {r["id"]: r["last_7_days"] for r in body(harness.get(headers=READER))["rules"]}
    assert hidden["entra.global-admin-added"] == {"matches": None, "alerts": 1}
    assert hidden["intune.device-wiped"] == {"matches": None, "alerts": 0}

    # counted once a minute per instance
    ledger.record(tenant, "entra.app-registered", "g", rows(dt.timedelta(minutes=5)))
    again = {r["id"]: r["last_7_days"] for r in body(harness.get(headers=PRIVACY_ADMIN))["rules"]}
    assert again["entra.app-registered"] == {"matches": 1, "alerts": 0}
    clock.advance(61)
    later = {r["id"]: r["last_7_days"] for r in body(harness.get(headers=PRIVACY_ADMIN))["rules"]}
    assert later["entra.app-registered"] == {"matches": 2, "alerts": 0}
