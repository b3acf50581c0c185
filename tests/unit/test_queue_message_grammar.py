"""Queue messages are checked against the app's own grammar when they are decoded.

A message names blobs, ids and Table keys that reach storage (and, for a backup trigger, a pipeline run).
Each model refuses, with a ValidationError before any service runs, what the app never writes: traversal,
separators, percent-encoding, control characters, over-long values, unknown sources, and trigger ids of
another scope. Each accepts everything the app itself writes. The e2e counterpart, through the local
host and real storage, is tests/e2e/test_hostile_queue_messages.py.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from alert_worker import functions as alert_functions
from governance_worker import functions as governance_functions
from ingest_worker import functions as ingest_functions
from queue_consumer import functions as queue_functions
from shared.alerts.model import NotifyMessage, alert_fingerprint
from shared.app.cli import _message_for
from shared.ingestion.archive import RawArchive, raw_blob_name
from shared.ingestion.messages import AlertWorkMessage, EventRef, IngestMessage
from shared.ingestion.normalize import SOURCES
from shared.notify.channels import ChannelConfig
from shared.platform.ids import CHANNEL_NAME, SCOPE_NAME, UnsafeStorageIdError
from shared.platform.settings import AppSettings
from shared.probe.scopes import DriftRule, DriftScope
from shared.probe.state import ChangeSummary, Trigger, trigger_id

TENANT = "00000000-0000-0000-0000-0000000000aa"
RUN_STARTED = dt.datetime(2026, 11, 20, 13, tzinfo=dt.UTC)
HOSTILE_NAMES = [
    "..",
    ".",
    "/",
    "%2F",
    "../../x",
    "a/../b",
    "a\\..\\b",
    "a?b",
    "a#b",
    "a\x00b",
    "a\nb",
    "a\x85b",
    " a",
    "",
    "x" * 2000,
]


def _management_content_types() -> list[str]:
    settings = AppSettings.model_construct(
        management_content_types=AppSettings.model_fields["management_content_types"].default,
        management_include_dlp=True,
    )
    return settings.enabled_content_types


# -- ingest -----------------------------------------------------------------------------------------


def _claim_check(**change: Any) -> dict[str, Any]:
    blob = raw_blob_name("entra_audit", RUN_STARTED, "0123456789abcdef", 1)
    return {"source": "entra_audit", "blob": blob, "count": 3, "run_id": "0123456789abcdef",
            "tenant_id": TENANT, **change}  # fmt: skip


def test_every_claim_check_the_hand_off_and_the_replay_cli_write_is_accepted() -> None:
    pages: list[tuple[str, str | None]] = [
        (source, None) for source in SOURCES if source != "o365_management"
    ]
    pages += [("o365_management", content_type) for content_type in _management_content_types()]
    for source, content_type in pages:
        prefix = source if content_type is None else f"{source}/{content_type}"
        blob = raw_blob_name(prefix, RUN_STARTED, "0123456789abcdef", 7)
        message = IngestMessage.model_validate_json(
            json.dumps(_claim_check(source=source, blob=blob, content_type=content_type))
        )
        assert (message.source, message.blob, message.content_type) == (source, blob, content_type)
        assert _message_for(blob).content_type == content_type  # the replay CLI rebuilds it from the name


@pytest.mark.parametrize(
    ("field", "value"),
    [("blob", name) for name in HOSTILE_NAMES]
    + [("tenant_id", name) for name in HOSTILE_NAMES]
    + [("run_id", name) for name in HOSTILE_NAMES]
    + [
        ("source", "graph"),
        ("source", "../config"),
        ("source", "entra_audit/x"),
        ("content_type", "../../config"),
        ("content_type", "Audit.General/x"),
        ("content_type", "Audit..General"),
        ("count", -1),
    ],
)
def test_a_claim_check_naming_what_the_app_never_writes_is_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        IngestMessage.model_validate_json(json.dumps(_claim_check(**{field: value})))
    assert refused.value.errors()[0]["loc"] == (field,)


def test_unknown_fields_of_a_claim_check_are_ignored() -> None:
    message = IngestMessage.model_validate_json(json.dumps(_claim_check(container="config", pk="x")))
    assert "container" not in message.model_dump()


# -- alert work -------------------------------------------------------------------------------------


def test_alert_work_refuses_an_event_reference_that_is_not_a_storage_id() -> None:
    for event_id in HOSTILE_NAMES:
        body = {"source": "entra_audit", "blob": "b", "run_id": "r", "events": [{"id": event_id, "pk": "t"}]}
        with pytest.raises(ValidationError):
            AlertWorkMessage.model_validate_json(json.dumps(body))


def test_alert_work_accepts_the_event_ids_normalization_makes() -> None:
    refs = [
        EventRef(id=event_id, pk=f"{TENANT}:2026-11")
        for event_id in (
            "entra_audit:Directory_2f0c1e4a-9b7d-4c53-a1f4-0d3b5e6f7a8b_AB12C_42",
            "o365:9f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b",
            "intune_audit:h:" + "0" * 32,
        )
    ]  # fmt: skip
    work = AlertWorkMessage(source="entra_audit", blob="raw/test.jsonl", run_id="r", events=refs)
    assert AlertWorkMessage.model_validate_json(work.model_dump_json()) == work


# -- notifications ----------------------------------------------------------------------------------


def _notify(**change: Any) -> str:
    alert = alert_fingerprint(TENANT, "entra.global-admin-added", "actor=a@b.c", 12345)
    return json.dumps({"alert_id": alert, "pk": TENANT, "channel": "secops-teams", "round": 1, **change})


def test_a_notification_the_alert_worker_queues_is_accepted() -> None:
    message = NotifyMessage.model_validate_json(_notify())
    assert message.delivery_key.endswith("/secops-teams/1")


@pytest.mark.parametrize(
    ("field", "value"),
    [("alert_id", name) for name in [*HOSTILE_NAMES, "ALERT-1", "alert-1/..", "alert-" + "a" * 100]]
    + [("channel", name) for name in [*HOSTILE_NAMES, "sink/..", "s" * 41]]
    + [("pk", name) for name in HOSTILE_NAMES]
    + [("round", 0), ("round", 1.5)],
)
def test_a_notification_naming_what_the_app_never_writes_is_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        NotifyMessage.model_validate_json(_notify(**{field: value}))
    assert refused.value.errors()[0]["loc"] == (field,)


@given(st.text(max_size=45) | st.from_regex(CHANNEL_NAME, fullmatch=True))
def test_the_channel_grammar_is_the_one_alert_channels_accept(name: str) -> None:
    try:
        ChannelConfig(name=name, type="webhook", url="https://example.com/hook")  # type: ignore[arg-type]
        configurable = True
    except ValidationError:
        configurable = False
    try:
        NotifyMessage.model_validate_json(_notify(channel=name))
        deliverable = True
    except ValidationError:
        deliverable = False
    assert deliverable == configurable


# -- backup triggers --------------------------------------------------------------------------------


def _trigger(scope: str, identifier: str) -> str:
    summary = ChangeSummary(
        count=1, first_change_at="2026-11-01T00:00:00.000Z", last_change_at="2026-11-01T00:00:00.000Z",
        actors=[], top_operations=[], services=["Intune"],
    )  # fmt: skip
    return json.dumps(
        {"trigger_id": identifier, "scope": scope, "reason": "r", "summary": summary.model_dump(),
         "checked_at": "2026-11-01T00:10:00.000Z"}
    )  # fmt: skip


@given(st.from_regex(SCOPE_NAME, fullmatch=True), st.datetimes(timezones=st.just(dt.UTC)))
def test_every_trigger_the_probe_makes_is_accepted(scope: str, at: dt.datetime) -> None:
    first = at.isoformat()
    trigger = Trigger.model_validate_json(_trigger(scope, trigger_id(scope, first, first)))
    assert trigger.scope == scope


@given(st.text(max_size=70) | st.from_regex(SCOPE_NAME, fullmatch=True))
def test_the_scope_grammar_is_the_one_drift_yaml_accepts(name: str) -> None:
    try:
        DriftScope(name=name, rules=[DriftRule()])
        configurable = True
    except ValidationError:
        configurable = False
    try:
        Trigger.model_validate_json(_trigger(name, f"{name}:{'0' * 24}"))
        triggerable = True
    except ValidationError:
        triggerable = False
    assert triggerable == configurable


@pytest.mark.parametrize(
    "identifier",
    [*HOSTILE_NAMES, "tenant-config", "tenant-config:", "tenant-config:../x", "tenant-config/../x",
     "tenant-config:x',RowKey='y", "other-scope:" + "0" * 24, "tenant-config:" + "a" * 65],
)  # fmt: skip
def test_a_trigger_whose_id_is_not_its_own_scopes_is_refused(identifier: str) -> None:
    with pytest.raises(ValidationError):
        Trigger.model_validate_json(_trigger("tenant-config", identifier))


@pytest.mark.parametrize("scope", HOSTILE_NAMES)
def test_a_trigger_of_a_hostile_scope_is_refused(scope: str) -> None:
    with pytest.raises(ValidationError):
        Trigger.model_validate_json(_trigger(scope, f"{scope}:{'0' * 24}"))


# -- the Blueprints ----------------------------------------------------------------------------------


class Out(func.Out[list[str]]):
    def __init__(self) -> None:
        self.value: list[str] | None = None

    def set(self, val: list[str]) -> None:
        self.value = val

    def get(self) -> list[str]:
        assert self.value is not None
        return self.value


def _no_service() -> Any:
    raise AssertionError("a hostile message reached a service")


def _with_output(body: bytes) -> tuple[Any, ...]:
    return QueueMessage(body=body), Out()


def _alone(body: bytes) -> tuple[Any, ...]:
    return (QueueMessage(body=body),)


def _with_two_outputs(body: bytes) -> tuple[Any, ...]:
    return QueueMessage(body=body), Out(), Out()


BLUEPRINTS: list[tuple[str, Any, str, Callable[[bytes], tuple[Any, ...]]]] = [
    ("ingest_page", ingest_functions, "ingest_service", _with_two_outputs),
    ("evaluate_alerts", alert_functions, "alert_service", _with_output),
    ("deliver_notification", alert_functions, "notification_service", _alone),
    ("run_backup_pipeline", queue_functions, "pipeline_trigger_service", _alone),
    ("run_governance_discovery", governance_functions, "governance_pipeline", _alone),
    ("evaluate_service_principal", governance_functions, "governance_pipeline", _with_output),
    ("update_service_principal_notes", governance_functions, "governance_pipeline", _alone),
]


@pytest.mark.parametrize(
    ("name", "module", "factory", "arguments"), BLUEPRINTS, ids=[b[0] for b in BLUEPRINTS]
)
def test_each_queue_function_refuses_a_hostile_message_before_any_service(
    monkeypatch: pytest.MonkeyPatch, name: str, module: Any, factory: str, arguments: Callable[..., Any]
) -> None:
    monkeypatch.setattr(module, factory, _no_service)
    bodies = {
        "ingest_page": json.dumps(_claim_check(source="../config")),
        "evaluate_alerts": json.dumps({"source": "entra_audit", "blob": "b", "run_id": "r",
                                       "events": [{"id": "..", "pk": "t"}]}),
        "deliver_notification": _notify(alert_id=".."),
        "run_backup_pipeline": _trigger("tenant-config", ".."),
        "run_governance_discovery": json.dumps({"tenant_id": TENANT, "activity_id": "../act",
                                                "trigger": "timer", "requested_at": "2026-11-20T13:00:00Z"}),
        "evaluate_service_principal": json.dumps({"tenant_id": TENANT, "object_id": "../x",
                                                  "evaluation_id": "ev-" + "0" * 32, "trigger": "event",
                                                  "observed_at": "2026-11-20T13:00:00Z"}),
        "update_service_principal_notes": json.dumps({"tenant_id": "..", "object_id": TENANT,
                                                      "evaluation_id": "ev-" + "0" * 32, "after": "a@b.co",
                                                      "source": "owners",
                                                      "planned_at": "2026-11-20T13:00:00Z"}),
    }  # fmt: skip
    function = getattr(module, name).build().get_user_function()
    for body in (bodies[name].encode(), b"[" * 3000 + b"]" * 3000, b'{"x": "\xff"}'):
        with pytest.raises(ValidationError):
            function(*arguments(body))


# -- the quarantine ----------------------------------------------------------------------------------


class RecordingContainer:
    def __init__(self) -> None:
        self.uploads: list[str] = []

    def upload_blob(self, name: str, *_: Any, **__: Any) -> None:
        self.uploads.append(name)


class RecordingBlobService:
    def __init__(self) -> None:
        self.containers: dict[str, RecordingContainer] = {}

    def get_container_client(self, name: str) -> RecordingContainer:
        return self.containers.setdefault(name, RecordingContainer())


def test_the_quarantine_refuses_a_source_that_would_leave_its_container() -> None:
    blobs = RecordingBlobService()
    archive = RawArchive(blobs)  # type: ignore[arg-type]
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    for source in ("../config", "..", "entra_audit/../../raw", "a\nb"):
        with pytest.raises(UnsafeStorageIdError):
            archive.quarantine(source, "page", 1, "reason", '{"bad": 1}', now)
    assert all(not c.uploads for c in blobs.containers.values())
    kept = archive.quarantine("entra_audit", "page", 1, "reason", '{"bad": 1}', now)
    assert blobs.containers["quarantine"].uploads == [kept.name]
