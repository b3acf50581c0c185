"""The alert_worker Blueprint's functions, called as the host calls them, with the services replaced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage
from pydantic import ValidationError

from alert_worker import functions
from shared.alerts.model import NotifyMessage
from shared.alerts.service import AlertReport
from shared.ingestion.messages import AlertWorkMessage, EventRef
from shared.notify.delivery_log import QUEUE_MAX_DEQUEUE_COUNT

ROOT = Path(__file__).resolve().parents[2]


class Out(func.Out[list[str]]):
    def __init__(self) -> None:
        self.value: list[str] | None = None

    def set(self, val: list[str]) -> None:
        self.value = val

    def get(self) -> list[str]:
        assert self.value is not None
        return self.value


class FakeAlertService:
    def __init__(self) -> None:
        self.seen: list[AlertWorkMessage] = []

    def process(self, message: AlertWorkMessage) -> AlertReport:
        self.seen.append(message)
        notify = NotifyMessage(alert_id="alert-1", pk="tenant", channel="teams", round=1).model_dump_json()
        return AlertReport(
            events=len(message.events), matches=1, created=["alert-1"], notify_messages=[notify]
        )


class FakeNotificationService:
    def __init__(self) -> None:
        self.calls: list[tuple[NotifyMessage, str | None, bool, Any]] = []

    def deliver(
        self,
        message: NotifyMessage,
        *,
        message_id: str | None = None,
        last_attempt: bool = False,
        defer: Any = None,
    ) -> Any:
        self.calls.append((message, message_id, last_attempt, defer))


def test_evaluate_alerts_decodes_the_batch_and_queues_the_notifications(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = FakeAlertService()
    monkeypatch.setattr(functions, "alert_service", lambda: service)
    batch = AlertWorkMessage(
        source="entra_audit", blob="b", run_id="r", events=[EventRef(id="e1", pk="t:2026-11")]
    )
    notify = Out()

    functions.evaluate_alerts.build().get_user_function()(
        QueueMessage(body=batch.model_dump_json().encode(), dequeue_count=1), notify
    )

    assert service.seen == [batch]
    assert [json.loads(m)["alert_id"] for m in notify.get()] == ["alert-1"]


def test_a_malformed_alerts_message_raises_so_it_ends_in_the_poison_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(functions, "alert_service", FakeAlertService)
    with pytest.raises(ValidationError):
        functions.evaluate_alerts.build().get_user_function()(QueueMessage(body=b'{"events": 3}'), Out())


@pytest.mark.parametrize(("dequeue_count", "last"), [(1, False), (QUEUE_MAX_DEQUEUE_COUNT, True)])
def test_deliver_notification_knows_the_last_attempt(
    monkeypatch: pytest.MonkeyPatch, dequeue_count: int, last: bool
) -> None:
    service = FakeNotificationService()
    monkeypatch.setattr(functions, "notification_service", lambda: service)
    message = NotifyMessage(alert_id="alert-1", pk="tenant", channel="slack", round=2)

    functions.deliver_notification.build().get_user_function()(
        QueueMessage(id="message-7", body=message.model_dump_json().encode(), dequeue_count=dequeue_count)
    )

    # The queue message's id tells a redelivery of this message from another copy of it.
    assert service.calls == [(message, "message-7", last, functions._notify_later)]


def test_the_last_attempt_matches_host_json() -> None:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["extensions"]["queues"]["maxDequeueCount"] == QUEUE_MAX_DEQUEUE_COUNT
