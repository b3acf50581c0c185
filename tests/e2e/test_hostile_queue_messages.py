"""Hostile queue messages through the local host, on every queue the app consumes.

Each queue with a trigger (`ingest`, `alerts`, `notify`, `backup-trigger`) gets a table of messages the
app never writes: not base64 although host.json says base64, base64 of invalid UTF-8, not JSON, JSON of
another shape, a JSON array, JSON nested 3,000 deep, a message at the 64 KiB limit, unknown fields, and
ids and blob paths that are not of the app's grammar (traversal, separators, percent-encoding, control
characters, another tenant's blob prefix, another scope's trigger id).

For every message the test asserts what the code intends:
- `poison`: every delivery fails, with the expected reason, maxDequeueCount times, then the message is
  in `<queue>-poison`, byte for byte;
- `dropped`: one delivery that succeeds and logs why it did nothing (a notification for a channel that
  is not configured; alert work whose events do not exist).
Afterwards: the host still runs and answered every message a bounded number of times (no crash loop, no
deferred copy left behind); every Cosmos container, Table row and blob is as it was; the tenant
simulator (Graph, tokens, Azure DevOps, webhooks) saw no request at all. Then one good message on each
queue is still processed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from azure.storage.queue import QueueClient

from devtools.services import PROJECT_ROOT
from devtools.simulator import TenantSimulator
from shared.alerts.model import Alert, NotifyMessage, alert_fingerprint
from shared.governance.messages import DiscoveryRequest, UpdateNotes, activity_id
from shared.ingestion.archive import RawArchive
from shared.ingestion.event_store import EventStore
from shared.ingestion.events import partition_key
from shared.ingestion.messages import AlertWorkMessage, EventRef, IngestMessage
from shared.ingestion.normalize import normalize_record
from shared.platform.clients import AzureClients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers, Queues, poison_queue
from shared.probe.state import ChangeSummary, Trigger, trigger_id
from tests.support.drift import unique_drift_file
from tests.support.host_process import HostProcess, wait_until
from tests.support.own_database import own_cosmos_database
from tests.support.simulated_tenant import app_settings_for, start_real_time_simulator

MAX_DEQUEUE_COUNT = 2  # host.json says 5; overridden as an app setting, as in Azure, to keep this short
HANG_GUARD_SECONDS = 180  # waits only guard against a hang
QUEUE_LIMIT = 64 * 1024  # characters of message content (base64 included) Azure Storage accepts
PAT = "hostile-queue-devops-pat"
NONCE = uuid.uuid4().hex[:10]
TENANT = str(uuid.uuid4())
OTHER_TENANT = str(uuid.uuid4())
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
PAGE = f"entra_audit/{NOW:%Y/%m/%d/%H}/hostile{NONCE}-00001.jsonl.gz"  # a real page in the raw archive
MISSING_PAGE = f"entra_audit/{NOW:%Y/%m/%d/%H}/missing{NONCE}-00001.jsonl.gz"
SINK_CHANNEL = "sink"  # the one configured notification channel
SEEDED_ALERT = alert_fingerprint(TENANT, "test.hostile-queue", "g", 1)
INVOCATION = re.compile(r" devtools\.host\.invocations (\{.*\})$")
QUEUES = (
    Queues.INGEST,
    Queues.ALERTS,
    Queues.NOTIFY,
    Queues.BACKUP_TRIGGER,
    Queues.GOVERNANCE_DISCOVERY,
    Queues.GOVERNANCE_EVALUATE,
    Queues.GOVERNANCE_UPDATE,
)


def b64(body: bytes | str) -> str:
    """Message content the way the Functions host expects it (host.json messageEncoding base64)."""
    return base64.b64encode(body.encode("utf-8") if isinstance(body, str) else body).decode("ascii")


def as_json(value: Any) -> str:
    return b64(json.dumps(value))


def refused(model: str, field: str) -> str:
    """How the error the host logs names a field pydantic refused: the refusal is that field's."""
    return f"for {model}\n{field}\n"


@dataclass(frozen=True)
class Hostile:
    queue: str
    label: str
    content: str  # exactly as put on the queue
    outcome: Literal["poison", "dropped"]
    reason: str  # poison: in every failed invocation's error; dropped: in the host log


@dataclass
class Sent:
    case: Hostile
    message_id: str


# -- the cases ---------------------------------------------------------------------------------------


def _page_record(moment: dt.datetime) -> dict[str, Any]:
    """A Graph directory audit record that no default rule matches."""
    actor = "hostile-queue@contoso.com"
    return {
        "id": f"Directory_{uuid.uuid4()}",
        "category": "UserManagement",
        "correlationId": str(uuid.uuid4()),
        "result": "success",
        "resultReason": "",
        "activityDisplayName": "Update user",
        "activityDateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
        "loggedByService": "Core Directory",
        "operationType": "Update",
        "initiatedBy": {
            "app": None,
            "user": {"id": str(uuid.uuid4()), "displayName": "Hostile", "userPrincipalName": actor},
        },
        "targetResources": [
            {"id": str(uuid.uuid4()), "displayName": None, "type": "User", "modifiedProperties": []}
        ],
        "additionalDetails": [],
    }


PAGE_RECORDS = [_page_record(NOW - dt.timedelta(minutes=m)) for m in (3, 2)]
SEEDED_EVENT = normalize_record(
    "entra_audit", _page_record(NOW - dt.timedelta(minutes=10)), tenant_id=TENANT, ingested_at=utc_iso(NOW)
)


BaseFor = Callable[[str], tuple[dict[str, Any], str]]
"""A queue's well-formed message that names nothing that exists, and what its handling logs, per case."""


def _generic(
    queue: str, base_for: BaseFor, outcome: Literal["poison", "dropped"], numeric_field: str
) -> list[Hostile]:
    """The cases every queue gets. The base message's own outcome is `outcome`: unknown fields and size
    must not change it (they are ignored by design). NaN goes into the base's `numeric_field`."""
    nested = "[" * 3000 + "]" * 3000

    def generic(label: str, content: str, result: Literal["poison", "dropped"], reason: str) -> Hostile:
        return Hostile(queue, label, content, result, reason)

    base, _ = base_for("any")
    with_nested = json.dumps({**base, "extra": "@@"}).replace('"@@"', nested)
    unknown_base, unknown_reason = base_for("unknown")
    with_unknown = {
        **unknown_base,
        "container": "config",
        "url": "http://127.0.0.1:1/steal",
        "pk": unknown_base.get("pk", OTHER_TENANT),
        "_etag": "*",
        "__class__": "Alert",
        "model_config": {"extra": "allow"},
    }
    limit_base, limit_reason = base_for("limit")
    padding = json.dumps({**limit_base, "pad": ""})
    # base64 turns 3 bytes into 4 characters: this raw length is exactly QUEUE_LIMIT characters encoded.
    raw_limit = QUEUE_LIMIT // 4 * 3
    at_limit = padding.replace('"pad": ""', '"pad": "' + "x" * (raw_limit - len(padding.encode())) + '"')
    assert len(b64(at_limit)) == QUEUE_LIMIT
    nan_body = json.dumps({**base, numeric_field: "@nan@"}).replace('"@nan@"', "NaN")
    return [
        generic("not base64", f"not base64 although host.json says so: {{{NONCE}}} ~!", "poison",
                "not valid base64"),
        generic("base64 of invalid UTF-8", b64(b'{"source": "\xff\xfe\xfd", "id": "\xc0\xaf"}'), "poison",
                "json_invalid"),
        generic("base64 of a lone surrogate", b64(b'{"id": "\xed\xb0\x80"}'), "poison", "json_invalid"),
        generic("an empty message", b64(b""), "poison", "json_invalid"),
        generic("not JSON", b64("{source: entra_audit, blob: ../../x"), "poison", "json_invalid"),
        generic("JSON of another shape", as_json({"hello": "world", "id": "..", "blob": "../../x"}), "poison",
                "ValidationError"),
        generic("a JSON array of the message", as_json([base]), "poison", "ValidationError"),
        generic("JSON null", as_json(None), "poison", "ValidationError"),
        generic("the message as a JSON string", as_json(json.dumps(base)), "poison", "ValidationError"),
        generic("a JSON number", as_json(42), "poison", "ValidationError"),
        generic("NaN in a numeric field", b64(nan_body), "poison", "ValidationError"),
        generic("arrays nested 3,000 deep", b64(nested), "poison", "recursion limit"),
        generic("objects nested 3,000 deep", b64('{"a":' * 3000 + "1" + "}" * 3000), "poison",
                "recursion limit"),
        generic("the message with a field nested 3,000 deep", b64(with_nested), "poison", "recursion limit"),
        generic("the message with unknown fields", as_json(with_unknown), outcome, unknown_reason),
        generic("the message padded to the 64 KiB limit", b64(at_limit), outcome, limit_reason),
    ]  # fmt: skip


HOSTILE_BLOBS = [
    ("traversal", "../../x"),
    ("traversal to the config container", "../config/rules.yaml"),
    ("traversal inside a valid prefix", "entra_audit/2026/../../../quarantine/x.json"),
    ("a slash", "/"),
    ("a leading slash", "/raw/" + MISSING_PAGE),
    ("percent-encoded slash", "entra_audit%2F..%2F..%2Fconfig%2Frules.yaml"),
    ("percent-encoded dots", "%2E%2E/%2E%2E/x"),
    ("backslash traversal", "..\\..\\config\\rules.yaml"),
    ("a query", MISSING_PAGE + "?comp=list"),
    ("a fragment", MISSING_PAGE + "#x"),
    ("NUL", "entra_audit/\x00/x.jsonl.gz"),
    ("newline", PAGE + "\n"),
    ("C1 control", "entra_audit/\x85x.jsonl.gz"),
    ("over-long", "entra_audit/" + "a" * 2000),
    ("empty", ""),
]


def ingest_cases() -> list[Hostile]:
    queue = Queues.INGEST
    base = {
        "source": "entra_audit",
        "blob": MISSING_PAGE,
        "count": 1,
        "run_id": "hostile",
        "tenant_id": TENANT,
    }
    cases = _generic(queue, lambda _: (base, "does not exist"), "poison", "count")
    cases += [
        Hostile(
            queue,
            f"blob: {label}",
            as_json({**base, "blob": blob}),
            "poison",
            refused("IngestMessage", "blob"),
        )
        for label, blob in HOSTILE_BLOBS
    ]
    # Another tenant's page: under its prefix, with its tenant id. There is none: nothing is read.
    other = f"{OTHER_TENANT}/entra_audit/{NOW:%Y/%m/%d/%H}/run-00001.jsonl.gz"
    foreign = as_json({**base, "blob": other, "tenant_id": OTHER_TENANT})
    cases.append(Hostile(queue, "another tenant's blob prefix", foreign, "poison", "does not exist"))
    # The real page, with one hostile field: nothing of it may be stored, quarantined or counted.
    page = {**base, "blob": PAGE, "count": len(PAGE_RECORDS)}
    fields: list[tuple[str, dict[str, Any]]] = [
        ("source: traversal to the config container", {"source": "../config"}),
        ("source: traversal to the raw archive", {"source": "../raw/entra_audit"}),
        ("source: unknown", {"source": "graph"}),
        ("source: slash", {"source": "entra_audit/x"}),
        ("content type: traversal", {"source": "o365_management", "content_type": "../../config"}),
        ("content type: unknown shape", {"source": "o365_management", "content_type": "Audit.General/x"}),
        ("tenant: dot-dot", {"tenant_id": ".."}),
        ("tenant: slash", {"tenant_id": "a/b"}),
        ("tenant: percent", {"tenant_id": "%2F"}),
        ("tenant: control character", {"tenant_id": TENANT + "\x00"}),
        ("tenant: over-long", {"tenant_id": "t" * 300}),
        ("run id: forged log line", {"run_id": "run\nINFO forged log line"}),
        ("count: negative", {"count": -1}),
        ("count: not a number", {"count": "many"}),
    ]
    cases += [
        Hostile(
            queue,
            f"the real page, {label}",
            as_json({**page, **change}),
            "poison",
            refused("IngestMessage", field),
        )
        for label, change in fields
        for field in [next(reversed(change))]
    ]
    duplicate = json.dumps(page)[:-1] + ', "blob": "../../config/rules.yaml"}'
    cases.append(
        Hostile(
            queue,
            "duplicate keys, the last one hostile",
            b64(duplicate),
            "poison",
            refused("IngestMessage", "blob"),
        )
    )
    return cases


def alerts_cases() -> list[Hostile]:
    queue = Queues.ALERTS
    missing_ref = {"id": f"entra_audit:Directory_{uuid.uuid4()}_AB12C_1", "pk": f"{TENANT}:{NOW:%Y-%m}"}
    base = {"source": "entra_audit", "blob": "hostile-base", "run_id": "hostile", "events": [missing_ref]}

    def base_for(case: str) -> tuple[dict[str, Any], str]:
        # Each dropped case names a blob of its own, so its log line is its own.
        blob = f"hostile-generic-{case}"
        return {**base, "blob": blob}, f"{blob}: 1 referenced events were not found"

    cases = _generic(queue, base_for, "dropped", "events")
    hostile_ids = [
        ("dot-dot", ".."),
        ("dot", "."),
        ("slash", "/"),
        ("percent-encoded slash", "%2F"),
        ("traversal to the database", "../../dbs/aoc"),
        ("a valid id plus traversal", missing_ref["id"] + "/.."),
        ("backslash", "entra_audit:x\\..\\.."),
        ("a query", "entra_audit:x?y"),
        ("NUL", "entra_audit:\x00"),
        ("newline", missing_ref["id"] + "\n"),
        ("blank around", f" {missing_ref['id']} "),
        ("over-long", "entra_audit:" + "a" * 300),
    ]
    cases += [
        Hostile(
            queue,
            f"event reference id: {label}",
            as_json({**base, "events": [missing_ref, {"id": event_id, "pk": missing_ref["pk"]}]}),
            "poison",
            refused("AlertWorkMessage", "events.1.id"),
        )
        for label, event_id in hostile_ids
    ]
    cases += [
        Hostile(queue, "event reference without a pk", as_json({**base, "events": [{"id": ".."}]}), "poison",
                "ValidationError"),
        Hostile(queue, "events not a list", as_json({**base, "events": {"id": ".."}}), "poison",
                "ValidationError"),
    ]  # fmt: skip
    # A hostile partition key only ever travels in a header or as a query parameter: nothing is found.
    for label, pk in (
        ("dot-dot", ".."),
        ("traversal", "../../dbs"),
        ("another tenant", f"{OTHER_TENANT}:2026-01"),
    ):
        blob = f"hostile-pk-{len(cases)}"
        message = {**base, "blob": blob, "events": [{"id": missing_ref["id"], "pk": pk}]}
        cases.append(Hostile(queue, f"event reference pk: {label}", as_json(message), "dropped",
                             f"{blob}: 1 referenced events were not found"))  # fmt: skip
    return cases


def notify_cases() -> list[Hostile]:
    queue = Queues.NOTIFY
    missing_alert = alert_fingerprint(TENANT, "test.missing", "g", 1)

    def base_for(case: str) -> tuple[dict[str, Any], str]:
        # Each dropped case names a channel of its own that is not configured; its log line says so.
        channel = f"gone-{case}"
        message = {"alert_id": missing_alert, "pk": TENANT, "channel": channel, "round": 1}
        return message, f"notification {missing_alert}/{channel}/1: channel no longer configured; dropped"

    cases = _generic(queue, base_for, "dropped", "round")
    cases.append(
        Hostile(queue, "a channel that does not exist",
                as_json({"alert_id": SEEDED_ALERT, "pk": TENANT, "channel": "nowhere", "round": 1}),
                "dropped", f"{SEEDED_ALERT}/nowhere/1: channel no longer configured")
    )  # fmt: skip
    valid = {"alert_id": SEEDED_ALERT, "pk": TENANT, "channel": SINK_CHANNEL, "round": 1}
    hostile_alert_ids = [
        ("dot-dot", ".."),
        ("dot", "."),
        ("slash", "/"),
        ("percent-encoded slash", "%2F"),
        ("traversal to the container", "../alerts"),
        ("a valid id plus traversal", SEEDED_ALERT + "/.."),
        ("a valid id plus a table key", SEEDED_ALERT + "',RowKey='x"),
        ("NUL", "alert-\x00"),
        ("newline", SEEDED_ALERT + "\n"),
        ("blank around", f" {SEEDED_ALERT} "),
        ("upper case", SEEDED_ALERT.upper()),
        ("over-long", "alert-" + "a" * 300),
        ("empty", ""),
    ]
    cases += [
        Hostile(
            queue,
            f"alert id: {label}",
            as_json({**valid, "alert_id": alert_id}),
            "poison",
            refused("NotifyMessage", "alert_id"),
        )
        for label, alert_id in hostile_alert_ids
    ]
    others: list[tuple[str, dict[str, Any]]] = [
        ("alert id `..` and a channel that does not exist", {"alert_id": "..", "channel": "nowhere"}),
        ("channel: traversal", {"channel": "../sink"}),
        ("channel: newline", {"channel": "sink\nINFO forged"}),
        ("channel: over-long", {"channel": "s" * 300}),
        ("pk: dot-dot", {"pk": ".."}),
        ("pk: slash", {"pk": "a/b"}),
        ("pk: control character", {"pk": TENANT + "\x01"}),
        ("round: zero", {"round": 0}),
        ("round: negative", {"round": -1}),
        ("round: text", {"round": "1; drop"}),
        ("round: fraction", {"round": 1.5}),
    ]
    cases += [
        Hostile(
            queue, label, as_json({**valid, **change}), "poison", refused("NotifyMessage", next(iter(change)))
        )
        for label, change in others
    ]
    return cases


def backup_cases(scope: str) -> list[Hostile]:
    queue = Queues.BACKUP_TRIGGER
    summary = {
        "count": 1, "first_change_at": utc_iso(NOW), "last_change_at": utc_iso(NOW), "actors": [],
        "top_operations": [], "services": ["Intune"],
    }  # fmt: skip
    unknown_scope = f"unknown-{NONCE}"
    base = {
        "trigger_id": f"{unknown_scope}:{'0' * 24}",
        "scope": unknown_scope,
        "reason": "hostile",
        "summary": summary,
        "checked_at": utc_iso(NOW),
    }
    cases = _generic(queue, lambda _: (base, "has no pipeline configured"), "poison", "summary")
    valid = {**base, "scope": scope, "trigger_id": f"{scope}:{'0' * 24}"}
    hostile_trigger_ids = [
        ("dot-dot", ".."),
        ("slash", "/"),
        ("percent-encoded slash", "%2F"),
        ("traversal after the scope", f"{scope}/../../Watermarks"),
        ("traversal in the id", f"{scope}:../../x"),
        ("a table key", f"{scope}:x',RowKey='y"),
        ("NUL", f"{scope}:\x00"),
        ("newline", f"{scope}:{'0' * 24}\n"),
        ("another scope's trigger id", f"other-scope:{'0' * 24}"),
        ("the scope alone", scope),
        ("over-long", f"{scope}:" + "a" * 300),
        ("empty", ""),
    ]
    cases += [
        Hostile(
            queue,
            f"trigger id: {label}",
            as_json({**valid, "trigger_id": value}),
            "poison",
            "trigger_id is not",
        )
        for label, value in hostile_trigger_ids
    ]
    hostile_scopes = [
        ("dot-dot", ".."),
        ("slash", "/"),
        ("percent-encoded slash", "%2F"),
        ("traversal", f"../{scope}"),
        ("newline", scope + "\n"),
        ("another tenant's prefix", f"{OTHER_TENANT}/{scope}"),
    ]
    cases += [
        Hostile(queue, f"scope: {label}", as_json({**valid, "scope": value, "trigger_id": f"{value}:0"}),
                "poison", "scope is not a drift scope name")
        for label, value in hostile_scopes
    ]  # fmt: skip
    cases.append(
        Hostile(queue, "summary of another shape", as_json({**valid, "summary": {"count": "all"}}), "poison",
                "ValidationError")
    )  # fmt: skip
    return cases


# -- governance (issue 18): discovery, evaluate, update ------------------------------------------------

GOVERNANCE_SP = str(uuid.uuid4())
GOVERNANCE_ACTIVITY = "act-discovery-" + uuid.uuid4().hex
GOVERNANCE_EVALUATION = "ev-" + uuid.uuid4().hex
FOREIGN_TENANT_REFUSAL = "is not the tenant this app serves"
HOSTILE_GOVERNANCE_IDS = [
    ("dot-dot", ".."),
    ("slash", "/"),
    ("percent-encoded slash", "%2F"),
    ("traversal", "../../dbs/aoc"),
    ("a table key", "x',RowKey='y"),
    ("NUL", "\x00"),
    ("newline", "id\nINFO forged log line"),
    ("over-long", "a" * 300),
    ("empty", ""),
]


def _governance_cases(
    queue: str, model: str, base: dict[str, Any], fields: list[tuple[str, str, Any]], numeric_field: str
) -> list[Hostile]:
    """The generic cases, with a base message for a tenant the app does not serve (refused before any
    read or write, so every one is poison), then a hostile value in each named field of the same
    message for the app's own tenant."""
    foreign = {**base, "tenant_id": OTHER_TENANT}

    def base_for(case: str) -> tuple[dict[str, Any], str]:
        # The governance messages forbid unknown fields: the extra ones (and the padding) are refused.
        return foreign, "extra_forbidden" if case in ("unknown", "limit") else FOREIGN_TENANT_REFUSAL

    cases = _generic(queue, base_for, "poison", numeric_field)
    own = {**base, "tenant_id": TENANT}
    cases += [
        Hostile(queue, f"{name}: {label}", as_json({**own, name: value}), "poison", refused(model, name))
        for name, label, value in fields
    ]
    cases += [
        Hostile(queue, f"tenant: {label}", as_json({**own, "tenant_id": value}), "poison",
                refused(model, "tenant_id"))
        for label, value in HOSTILE_GOVERNANCE_IDS
    ]  # fmt: skip
    cases.append(
        Hostile(queue, "version 2", as_json({**own, "version": 2}), "poison", refused(model, "version"))
    )
    return cases


def governance_discovery_cases() -> list[Hostile]:
    base = {
        "tenant_id": TENANT, "activity_id": GOVERNANCE_ACTIVITY, "trigger": "request", "full_seed": True,
        "requested_at": utc_iso(NOW), "requested_by": "hostile",
    }  # fmt: skip
    fields: list[tuple[str, str, Any]] = [
        ("activity_id", label, value) for label, value in HOSTILE_GOVERNANCE_IDS
    ]
    fields += [
        ("trigger", "unknown", "cron"),
        ("full_seed", "text", "yes please"),
        ("requested_at", "not a time", "yesterday"),
        ("requested_by", "over-long", "x" * 300),
    ]
    return _governance_cases(Queues.GOVERNANCE_DISCOVERY, "DiscoveryRequest", base, fields, "full_seed")


def governance_evaluate_cases() -> list[Hostile]:
    base = {
        "tenant_id": TENANT, "object_id": GOVERNANCE_SP, "evaluation_id": GOVERNANCE_EVALUATION,
        "trigger": "event", "cause": "hostile", "observed_at": utc_iso(NOW),
    }  # fmt: skip
    fields: list[tuple[str, str, Any]] = [
        (name, label, value)
        for name in ("object_id", "evaluation_id")
        for label, value in HOSTILE_GOVERNANCE_IDS
    ]
    fields += [
        ("object_id", "not a GUID", "not-a-guid"),
        ("object_id", "a GUID plus traversal", GOVERNANCE_SP + "/.."),
        ("batch_id", "traversal", "../act-evaluation"),
        ("trigger", "unknown", "webhook"),
        ("cause", "over-long", "c" * 300),
        ("observed_at", "not a time", "now"),
        ("snapshot", "a list", [GOVERNANCE_SP]),
    ]
    cases = _governance_cases(Queues.GOVERNANCE_EVALUATE, "EvaluateObject", base, fields, "version")
    shape = {**base, "snapshot": {"id": GOVERNANCE_SP, "notes": 42}}
    cases.append(Hostile(Queues.GOVERNANCE_EVALUATE, "snapshot: another shape", as_json(shape), "poison",
                         "for EvaluateObject\nsnapshot"))  # fmt: skip
    other = {"id": str(uuid.uuid4()), "appId": str(uuid.uuid4()), "displayName": "Another"}
    mismatch = {**base, "snapshot": {"service_principal": other}}
    cases.append(Hostile(Queues.GOVERNANCE_EVALUATE, "snapshot of another principal", as_json(mismatch),
                         "poison", "the snapshot is service principal"))  # fmt: skip
    return cases


def governance_update_cases() -> list[Hostile]:
    base = {
        "tenant_id": TENANT, "object_id": GOVERNANCE_SP, "evaluation_id": GOVERNANCE_EVALUATION,
        "trigger": "discovery", "before": None, "after": "owner@contoso.com", "source": "owners",
        "planned_at": utc_iso(NOW), "reason": "hostile",
    }  # fmt: skip
    fields: list[tuple[str, str, Any]] = [
        (name, label, value)
        for name in ("object_id", "evaluation_id")
        for label, value in HOSTILE_GOVERNANCE_IDS
    ]
    fields += [
        ("after", "over Graph's 1,024 characters", "a@contoso.com;" * 80),
        ("after", "empty", ""),
        ("after", "not text", ["a@contoso.com"]),
        ("source", "unknown", "attacker"),
        ("planned_at", "not a time", "soon"),
        ("reason", "over-long", "r" * 600),
    ]
    return _governance_cases(Queues.GOVERNANCE_UPDATE, "UpdateNotes", base, fields, "version")


# -- the stack ---------------------------------------------------------------------------------------


@dataclass
class Stack:
    host: HostProcess
    clients: AzureClients
    database: str
    simulator: TenantSimulator
    scope: str
    sink: str

    def raw_queue(self, name: str) -> QueueClient:
        """A client that puts and reads message content exactly as given (no encoding policy)."""
        return self.clients.queue_service.get_queue_client(name)


def _seed(clients: AzureClients) -> None:
    RawArchive(clients.blob_service).write_page(PAGE, PAGE_RECORDS)
    store = EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        2,
    )
    try:
        store.write_events([SEEDED_EVENT])
        store.update_facets(TENANT, [SEEDED_EVENT], [], utc_iso(NOW), shard_key="hostile-queue")
    finally:
        store.close()
    seen = utc_iso(NOW - dt.timedelta(minutes=5))
    alert = Alert(
        id=SEEDED_ALERT, pk=TENANT, tenant_id=TENANT, rule_id="test.hostile-queue", title="Seeded alert",
        description="An alert for the good notification", severity="high", group_key="g", occurrences=1,
        first_seen=seen, last_seen=seen, created_at=seen, updated_at=seen,
    )  # fmt: skip
    clients.cosmos_container(CosmosContainers.ALERTS.name).create_item(alert.model_dump(mode="json"))


def _clear_queues(clients: AzureClients) -> None:
    for queue in QUEUES:
        for name in (queue, poison_queue(queue)):
            clients.queue_service.get_queue_client(name).clear_messages()


@pytest.fixture(scope="module")
def stack(app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work_dir: Path = tmp_path_factory.mktemp("hostile-queue-host")
    drift_file, scope = unique_drift_file(work_dir, "hostileq")
    sink = f"hostile-{NONCE}"
    simulator = start_real_time_simulator(tenant_id=TENANT, seed=13, devops_pat=PAT)
    try:
        with own_cosmos_database("aoc-hostile-queue") as (database, clients):
            _clear_queues(clients)
            _seed(clients)
            settings = {
                **app_environment,
                **app_settings_for(simulator),
                "COSMOS_DATABASE": database,
                "DRIFT_FILE": str(drift_file),
                "PROBE_ENABLED": "false",
                "ENRICHMENT_ENABLED": "false",
                "SOURCE_ENTRA_AUDIT": "false",
                "SOURCE_INTUNE_AUDIT": "false",
                "SOURCE_ENTRA_SIGNIN": "false",
                "SOURCE_O365_MANAGEMENT": "false",
                "DEVOPS_AUTH_MODE": "pat",
                "DEVOPS_PAT": PAT,
                "DEVOPS_ORGANIZATION": "contoso",
                "DEVOPS_PROJECT": "M365Config",
                "DEVOPS_PIPELINE_ID": "1",
                "ALERT_CHANNELS": json.dumps(
                    [{"name": SINK_CHANNEL, "type": "webhook", "url": simulator.webhook_url(sink)}]
                ),
                "ALERT_BUSINESS_HOURS": "00:00-24:00",
                "ALERT_BUSINESS_DAYS": "Mon-Sun",
                # Nothing but the queue messages of this test may touch storage.
                "AzureWebJobs.poll_audit_sources.Disabled": "true",
                "AzureWebJobs.check_source_health.Disabled": "true",
                "AzureWebJobs.discover_service_principals.Disabled": "true",
                # Host.json overrides, as app settings are in Azure: retry at once, give up after two.
                "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": str(MAX_DEQUEUE_COUNT),
                "AzureFunctionsJobHost__extensions__queues__visibilityTimeout": "00:00:00",
                "AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:00:01",
            }
            host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work_dir, environment=settings).start(
                timeout=60
            )
            try:
                yield Stack(host, clients, database, simulator, scope, sink)
            finally:
                host.stop()
                _clear_queues(clients)
    finally:
        simulator.stop()


# -- reading back --------------------------------------------------------------------------------


def storage_snapshot(stack: Stack) -> dict[str, Any]:
    """Every Cosmos container of the test's database (definition and documents with their system
    fields, so a rewrite shows as a new _etag), every Table row with its ETag, every blob with its ETag."""
    snapshot: dict[str, Any] = {}
    db = stack.clients.cosmos.get_database_client(stack.database)
    for properties in sorted(db.list_containers(), key=lambda p: p["id"]):
        container = db.get_container_client(properties["id"])
        items = container.query_items("SELECT * FROM c", enable_cross_partition_query=True)
        snapshot[f"cosmos:{properties['id']}"] = {
            "definition": dict(properties),
            "items": sorted((dict(i) for i in items), key=lambda d: (str(d.get("pk")), d["id"])),
        }
    tables = stack.clients.table_service
    for table in sorted(tables.list_tables(), key=lambda t: t.name):
        rows = tables.get_table_client(table.name).list_entities()
        snapshot[f"table:{table.name}"] = sorted(
            (str(r["PartitionKey"]), str(r["RowKey"]), str(r.metadata.get("etag"))) for r in rows
        )
    blobs = stack.clients.blob_service
    for name in sorted(str(c.name) for c in blobs.list_containers()):
        listed = blobs.get_container_client(name).list_blobs()
        snapshot[f"blob:{name}"] = {b.name: b.etag for b in listed}
    return snapshot


def invocations(host: HostProcess) -> list[dict[str, Any]]:
    """The host's one structured line per invocation."""
    found = []
    for line in host.log().splitlines():
        match = INVOCATION.search(line)
        if match:
            found.append(json.loads(match.group(1)))
    return found


def queue_depth(stack: Stack, name: str) -> int:
    """Messages in a queue, visible or not (a deferred copy counts too)."""
    return int(stack.raw_queue(name).get_queue_properties().approximate_message_count or 0)


def poison_contents(stack: Stack, queue: str) -> list[str]:
    """Every message content in `<queue>-poison`, read without removing it (it stays until cleanup)."""
    client = stack.raw_queue(poison_queue(queue))
    contents: list[str] = []
    while True:
        batch = list(client.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=300))
        if not batch:
            return contents
        contents.extend(m.content for m in batch)


def listener(stack: Stack, queue: str) -> dict[str, Any]:
    status = stack.host.status()
    assert status is not None, "the host does not answer"
    return next(q for q in status["queue_listeners"] if q["queue"] == queue)


def host_alive(host: HostProcess) -> bool:
    return host.process is not None and host.process.poll() is None and host.status() is not None


def all_cases(scope: str) -> list[Hostile]:
    return (
        ingest_cases()
        + alerts_cases()
        + notify_cases()
        + backup_cases(scope)
        + governance_discovery_cases()
        + governance_evaluate_cases()
        + governance_update_cases()
    )


def _matches(reason: str, text: str) -> bool:
    return any(part in text for part in reason.split("|"))


# -- the test ------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_hostile_messages_on_every_queue_poison_or_drop_without_side_effects(stack: Stack) -> None:
    cases = all_cases(stack.scope)
    assert {c.queue for c in cases} == set(Queues.ALL)  # every queue the app consumes
    labels = Counter((c.queue, c.label) for c in cases)
    assert max(labels.values()) == 1, [k for k, n in labels.items() if n > 1]
    before = storage_snapshot(stack)
    requests_before = len(stack.simulator.requests())

    sent = [Sent(case, stack.raw_queue(case.queue).send_message(case.content).id) for case in cases]
    poisoned = {q: [s for s in sent if s.case.queue == q and s.case.outcome == "poison"] for q in QUEUES}
    dropped = {q: [s for s in sent if s.case.queue == q and s.case.outcome == "dropped"] for q in QUEUES}

    expected = {q: {"poisoned": len(poisoned[q]), "processed": len(dropped[q])} for q in QUEUES}

    def settled() -> bool:
        for queue in QUEUES:
            state = listener(stack, queue)
            if state["poisoned"] < len(poisoned[queue]) or state["processed"] < len(dropped[queue]):
                return False
        return all(queue_depth(stack, queue) == 0 for queue in QUEUES)

    try:
        wait_until(settled, timeout=HANG_GUARD_SECONDS, interval=0.5, message="every hostile message handled")
    except AssertionError as timed_out:
        state = {q: (listener(stack, q), queue_depth(stack, q)) for q in QUEUES}
        raise AssertionError(f"{timed_out}; expected {expected}; listeners and depths: {state}") from None

    # The host is alive, and each message was tried a bounded number of times, for the expected reason.
    assert host_alive(stack.host)
    log = stack.host.log()
    by_message: dict[str, list[dict[str, Any]]] = {}
    for line in invocations(stack.host):
        by_message.setdefault(str(line.get("message_id")), []).append(line)
    for item in sent:
        case, tried = item.case, by_message.get(item.message_id, [])
        context = f"{case.queue}: {case.label}"
        if case.outcome == "poison":
            assert [t["outcome"] for t in tried] == ["failed"] * MAX_DEQUEUE_COUNT, (context, tried)
            assert [t["dequeue_count"] for t in tried] == list(range(1, MAX_DEQUEUE_COUNT + 1)), context
            for attempt in tried:
                assert _matches(case.reason, attempt["error"]), (context, attempt["error"])
        else:
            assert [t["outcome"] for t in tried] == ["succeeded"], (context, tried)
            assert case.reason in log, (context, case.reason)
    for queue in QUEUES:
        state = listener(stack, queue)
        assert state["poisoned"] == len(poisoned[queue]), (queue, state)
        assert state["failed"] == MAX_DEQUEUE_COUNT * len(poisoned[queue]), (queue, state)
        assert state["processed"] == len(dropped[queue]), (queue, state)
        assert state["in_flight"] == 0, (queue, state)
        # The poison queue holds exactly the hostile messages, byte for byte.
        assert Counter(poison_contents(stack, queue)) == Counter(s.case.content for s in poisoned[queue]), (
            queue
        )
    # No function raised anything but the refusals expected above: no crash of another kind.
    errors = Counter(t["error"].split(":", 1)[0] for t in invocations(stack.host) if t["outcome"] == "failed")
    assert set(errors) <= {"ValueError", "ValidationError", "UnsafeStorageIdError", "ForeignTenant"}, errors

    # Nothing was stored, moved or deleted, and nothing left the app.
    assert storage_snapshot(stack) == before
    assert stack.simulator.requests()[requests_before:] == []
    assert stack.simulator.webhook_deliveries(stack.sink) == []
    assert stack.simulator.devops_attempts() == []
    # A newline in a message never forged a log line of its own.
    assert not [line for line in log.splitlines() if line.startswith("INFO forged")]

    _good_messages_are_still_processed(stack, {q: listener(stack, q) for q in QUEUES})


def _good_messages_are_still_processed(stack: Stack, counts: dict[str, dict[str, Any]]) -> None:
    """The control: one well-formed message on each queue, after the hostile ones, does its work."""
    queues = {name: stack.clients.queue(name) for name in QUEUES}  # the app's own encoding
    queues[Queues.INGEST].send_message(
        IngestMessage(
            source="entra_audit", blob=PAGE, count=len(PAGE_RECORDS), run_id="good-ingest", tenant_id=TENANT
        ).model_dump_json()
    )
    queues[Queues.ALERTS].send_message(
        AlertWorkMessage(
            source="entra_audit", blob="good-alerts", run_id="good-alerts",
            events=[EventRef(id=SEEDED_EVENT["id"], pk=SEEDED_EVENT["pk"])],
        ).model_dump_json()
    )  # fmt: skip
    queues[Queues.NOTIFY].send_message(
        NotifyMessage(alert_id=SEEDED_ALERT, pk=TENANT, channel=SINK_CHANNEL, round=1).model_dump_json()
    )
    first = last = utc_iso(NOW - dt.timedelta(minutes=30))
    summary = ChangeSummary(
        count=1, first_change_at=first, last_change_at=last, actors=[], top_operations=[], services=["Intune"]
    )
    good_trigger = Trigger(
        trigger_id=trigger_id(stack.scope, first, last), scope=stack.scope, reason="good", summary=summary,
        checked_at=utc_iso(NOW),
    )  # fmt: skip
    queues[Queues.BACKUP_TRIGGER].send_message(good_trigger.model_dump_json())
    # Governance: a discovery of the simulator's tenant (it queues the evaluations), and a notes update
    # that ReportOnly records as skipped.
    queues[Queues.GOVERNANCE_DISCOVERY].send_message(
        DiscoveryRequest(
            tenant_id=TENANT, activity_id=activity_id("discovery", TENANT, NONCE), trigger="request",
            requested_at=utc_iso(NOW),
        ).model_dump_json()
    )  # fmt: skip
    queues[Queues.GOVERNANCE_UPDATE].send_message(
        UpdateNotes(
            tenant_id=TENANT, object_id=GOVERNANCE_SP, evaluation_id=GOVERNANCE_EVALUATION,
            after="owner@contoso.com", source="owners", planned_at=utc_iso(NOW),
        ).model_dump_json()
    )  # fmt: skip

    events = stack.clients.cosmos_container(CosmosContainers.EVENTS.name)
    page_pks = {partition_key(TENANT, utc_iso(NOW - dt.timedelta(minutes=m))) for m in (3, 2)}

    def page_stored() -> bool:
        found = [
            i
            for pk in page_pks
            for i in events.query_items(
                "SELECT c.id FROM c WHERE c.pk = @pk AND c.raw_ref.blob = @blob",
                parameters=[{"name": "@pk", "value": pk}, {"name": "@blob", "value": PAGE}],
                partition_key=pk,
            )
        ]
        return len(found) == len(PAGE_RECORDS)

    wait_until(page_stored, timeout=HANG_GUARD_SECONDS, interval=0.5, message="the good page's events")
    wait_until(
        lambda: "evaluated 1 events of run good-alerts" in stack.host.log(),
        timeout=HANG_GUARD_SECONDS,
        message="the good alert work",
    )
    [delivery] = wait_until(
        lambda: stack.simulator.webhook_deliveries(stack.sink),
        timeout=HANG_GUARD_SECONDS,
        message="the good notification",
    )
    assert delivery["headers"]["x-aoc-delivery-id"] == f"{SEEDED_ALERT}/{SINK_CHANNEL}/1"
    assert delivery["accepted"]
    [run] = wait_until(
        stack.simulator.devops_runs, timeout=HANG_GUARD_SECONDS, message="the good pipeline run"
    )
    assert (run["organization"], run["project"], int(run["pipeline_id"])) == ("contoso", "M365Config", 1)
    wait_until(
        lambda: all(queue_depth(stack, q) == 0 for q in QUEUES),
        timeout=HANG_GUARD_SECONDS,
        message="every good message (and the alert work the page made) handled",
    )
    for queue in QUEUES:
        state = listener(stack, queue)
        assert state["poisoned"] == counts[queue]["poisoned"], (queue, state)  # none of them went to poison
        assert state["processed"] > counts[queue]["processed"], (queue, state)
    assert host_alive(stack.host)
