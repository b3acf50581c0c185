"""Governance findings as events for the rule engine, so a dangerous grant or an expiring credential
alerts through the existing rules, suppression and notification channels.

`FindingAlerts.publish(outcome, obj)` turns each finding the evaluation opened (`outcome.opened`: new,
or found again after it was resolved) into one canonical event (shared.ingestion.events.Event), stores
them in the events container (so they show in the explorer and alerts link to them), runs the alert
service over them, and returns the notify-queue messages to send. A finding opened under an accepted
risk (state `accepted`) is not published: the admin said so.

The event (`finding_event`):

| field | value |
|---|---|
| `id` | `aoc_governance:{finding id}-{opened_at as digits}`: one per finding and open stretch |
| `source` | `aoc_governance` (not an ingestion source: no watermark, no health check) |
| `service` / `category` | `Directory` / `ServicePrincipalGovernance` |
| `operation` | `Governance finding opened` |
| `timestamp` | the finding's `opened_at` |
| `actor` | the app itself (type `system`) |
| `targets[0]` | the service principal (type `ServicePrincipal`, its object id and display name) |
| `governance` | the finding (id, validator id, severity, subject, message, evidence, state, times), |
| | the object (id, name, app id, type), the evaluation id, and `links` (API route, console page) |

Rules match the `governance.*` fields (shared/rules/default_rules.yaml, `governance.` rules). New
events are counted in the explorer's facets as ingestion counts them. Publishing is redelivery-safe:
the same finding and stretch is the same event id (EventStore upserts and keeps tags and comments), and
the alert service counts a match once (its ledger), so publishing one outcome twice leaves one alert
with one occurrence. Its still-queued notifications are handed out again; the delivery log sends each
once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any, Protocol

from shared.alerts.service import AlertReport
from shared.governance.model import GovernedObject
from shared.governance.records import FindingRecord
from shared.governance.service import EvaluationOutcome
from shared.ingestion.events import (
    Actor,
    ActorType,
    Event,
    ModifiedProperty,
    OperationType,
    Result,
    Service,
    Target,
    partition_key,
)
from shared.platform.clock import Clock, utc_iso

GOVERNANCE_SOURCE = "aoc_governance"
FINDING_OPERATION = "Governance finding opened"
FINDING_CATEGORY = "ServicePrincipalGovernance"
FINDING_TAG = "governance"
APP_DISPLAY = "AOC Functions"
_NOT_DIGITS = re.compile(r"[^0-9]")


class EventWriter(Protocol):
    """What publishing needs of the event store (shared.ingestion.event_store.EventStore)."""

    def write_events(self, documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def update_facets(
        self,
        tenant_id: str,
        new: list[dict[str, Any]],
        existing: list[dict[str, Any]],
        seen_at: str,
        shard_key: str,
    ) -> None: ...


class AlertEvaluator(Protocol):
    """What publishing needs of the alert service (shared.alerts.service.AlertService)."""

    def evaluate(self, events: list[dict[str, Any]]) -> AlertReport: ...


def finding_event_id(finding: FindingRecord) -> str:
    """`aoc_governance:fnd-{40 hex}-{opened_at digits}`: inside the event id grammar
    (shared.platform.ids.EVENT_ID), the same on every publish of one open stretch."""
    return f"{GOVERNANCE_SOURCE}:{finding.id}-{_NOT_DIGITS.sub('', finding.opened_at)}"


def object_links(object_id: str) -> dict[str, str]:
    """Where the object's findings and history are: the API route and the console page (relative)."""
    return {
        "api": f"/api/governance/objects/{object_id}",
        "console": f"/governance?object={object_id}",
    }


def finding_event(finding: FindingRecord, obj: GovernedObject, ingested_at: dt.datetime) -> dict[str, Any]:
    """The canonical event for one opened finding (validated as shared.ingestion.events.Event)."""
    sp = obj.service_principal
    display = finding.object_name or sp.display_name or sp.app_display_name or finding.object_id
    governance: dict[str, Any] = {
        "finding_id": finding.id,
        "validator_id": finding.validator_id,
        "severity": finding.severity,
        "subject": finding.subject,
        "message": finding.message,
        "evidence": finding.evidence,
        "state": finding.state,
        "object_id": finding.object_id,
        "object_name": display,
        "app_id": finding.app_id,
        "service_principal_type": sp.service_principal_type,
        "evaluation_id": finding.evaluation_id,
        "first_seen": finding.first_seen,
        "opened_at": finding.opened_at,
        "links": object_links(finding.object_id),
    }
    event = Event(
        id=finding_event_id(finding),
        pk=partition_key(finding.pk, finding.opened_at),
        tenant_id=finding.pk,
        source=GOVERNANCE_SOURCE,
        service=Service.DIRECTORY,
        category=FINDING_CATEGORY,
        operation=FINDING_OPERATION,
        operation_type=OperationType.OTHER,
        result=Result.FAILURE,
        result_reason=finding.message[:500],
        actor=Actor(type=ActorType.SYSTEM, display=APP_DISPLAY),
        targets=[
            Target(
                type="ServicePrincipal",
                id=finding.object_id,
                display=display,
                modified_properties=[
                    ModifiedProperty(name="validator", new=finding.validator_id),
                    ModifiedProperty(name="subject", new=finding.subject),
                ],
            )
        ],
        timestamp=finding.opened_at,
        ingested_at=utc_iso(ingested_at),
        correlation_id=finding.evaluation_id,
        summary=f"{display}: {finding.message}"[:1000],
        tags=[FINDING_TAG],
    )
    return {**event.model_dump(mode="json", exclude={"raw", "raw_ref"}), "governance": governance}


class FindingAlerts:
    """The FindingPublisher of the governance pipeline (shared.governance.pipeline)."""

    def __init__(self, events: EventWriter, alerts: AlertEvaluator, clock: Clock) -> None:
        self._events = events
        self._alerts = alerts
        self._clock = clock

    def events_for(self, outcome: EvaluationOutcome, obj: GovernedObject) -> list[dict[str, Any]]:
        """The events of the findings `outcome` opened (accepted ones left out)."""
        if obj.id != outcome.object_id:
            raise ValueError(f"object {obj.id} is not the outcome's {outcome.object_id}")
        now = self._clock.now()
        return [finding_event(f, obj, now) for f in outcome.opened if f.state == "open"]

    def publish(self, outcome: EvaluationOutcome, obj: GovernedObject) -> list[str]:
        """Store the opened findings' events and alert on them; the notify-queue messages to send.

        Raises shared.platform.ids.UnsafeStorageIdError (nothing written) for an unsafe id, and whatever
        Cosmos DB raises: the caller's message is then redelivered and publishes again."""
        documents = self.events_for(outcome, obj)
        if not documents:
            return []
        new = self._events.write_events(documents)
        new_ids = {d["id"] for d in new}
        existing = [d for d in documents if d["id"] not in new_ids]
        # As ingestion does: count the new events' facet values (source, service, operation, ...) so the
        # explorer offers them; a redelivered event only makes sure its values exist.
        self._events.update_facets(
            outcome.tenant_id, new, existing, documents[0]["ingested_at"], shard_key=outcome.evaluation_id
        )
        return self._alerts.evaluate(documents).notify_messages
