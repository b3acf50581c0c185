"""Ingestion health as events, so "source stale" is an ordinary rule with suppression and notifications.

A source is stale when its last successful poll is more than 3 poll intervals old. The synthetic
event's id and time are derived from that last success, so every check during one outage yields the
same event (one alert, one notification) and a new outage yields a new one. These events are evaluated
by the rules but not stored with the audit events.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from shared.alerts.ports import LedgerRetention
from shared.alerts.service import AlertReport, AlertService
from shared.ingestion.events import partition_key
from shared.ingestion.ports import SourceStates
from shared.ingestion.watermarks import SourceState
from shared.platform.clock import Clock, parse_utc, utc_iso

logger = logging.getLogger(__name__)

HEALTH_SOURCE = "aoc_health"
STALE_OPERATION = "Ingestion source stale"
STALE_AFTER_INTERVALS = 3


def stale_source_events(
    states: Iterable[SourceState],
    enabled: set[str],
    tenant_id: str,
    now: dt.datetime,
    poll_interval_seconds: float,
) -> list[dict[str, Any]]:
    """One event per enabled source whose last success is older than 3 poll intervals.

    A source that never succeeded is reported only once it has a recorded error (a fresh install is not
    an outage); its event time is then `now` rounded down to the poll interval.
    """
    limit = dt.timedelta(seconds=STALE_AFTER_INTERVALS * poll_interval_seconds)
    events = []
    for state in states:
        if state.source not in enabled:
            continue
        if state.last_success:
            last = parse_utc(state.last_success)
            if now - last <= limit:
                continue
            stale_since = last + limit
        elif state.last_error:
            interval = max(poll_interval_seconds, 1.0)
            stale_since = dt.datetime.fromtimestamp(now.timestamp() // interval * interval, dt.UTC)
        else:
            continue
        timestamp = utc_iso(stale_since)
        missed = (
            int((now - stale_since).total_seconds() // max(poll_interval_seconds, 1.0))
            + STALE_AFTER_INTERVALS
        )
        events.append(
            {
                "id": f"{HEALTH_SOURCE}:{state.source}:{state.last_success or 'never'}",
                "pk": partition_key(tenant_id, timestamp),
                "tenant_id": tenant_id,
                "source": HEALTH_SOURCE,
                "service": "Other",
                "category": "Health",
                "operation": STALE_OPERATION,
                "operation_type": "other",
                "result": "failure",
                "result_reason": state.last_error,
                "actor": {"type": "system", "id": None, "upn": None, "display": "AOC Functions", "ip": None},
                "targets": [
                    {
                        "type": "Source",
                        "id": state.source,
                        "display": state.source,
                        "modified_properties": [
                            {"name": "last_success", "old": None, "new": state.last_success},
                            {"name": "poll_intervals_missed", "old": None, "new": missed},
                        ],
                    }
                ],
                "timestamp": timestamp,
                "ingested_at": utc_iso(now),
                "correlation_id": None,
                "summary": f"{state.source} has not been read since {state.last_success or 'it was enabled'}",
                "tags": ["health"],
            }
        )
    return events


LEDGER_RETENTION = dt.timedelta(days=30)


class SourceHealthCheck:
    """The timer's job: alert on stale sources, and once an hour drop old match-ledger rows."""

    def __init__(
        self,
        watermarks: SourceStates,
        alerts: AlertService,
        ledger: LedgerRetention,
        clock: Clock,
        *,
        enabled_sources: set[str],
        tenant_id: str,
        poll_interval_seconds: float,
    ) -> None:
        self._watermarks = watermarks
        self._alerts = alerts
        self._ledger = ledger
        self._clock = clock
        self._enabled = enabled_sources
        self._tenant_id = tenant_id
        self._interval = poll_interval_seconds
        self._pruned_at: dt.datetime | None = None

    def run(self) -> AlertReport:
        now = self._clock.now()
        events = stale_source_events(
            self._watermarks.all(), self._enabled, self._tenant_id, now, self._interval
        )
        report = self._alerts.evaluate(events)
        if self._pruned_at is None or now - self._pruned_at >= dt.timedelta(hours=1):
            removed = self._ledger.prune(now - LEDGER_RETENTION)
            self._pruned_at = now
            if removed:
                logger.info("match ledger: removed %d rows older than %s", removed, LEDGER_RETENTION)
        return report
