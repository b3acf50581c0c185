"""Evaluates stored events against the rules and keeps one alert per incident.

For each (rule, group) with matches in a batch:
1. every match is written to the match ledger (idempotent rows); while an admin's suppression of the
   rule and group is active (one point read of its deterministic id, shared.alerts.suppressions), the
   matches are counted on it and nothing more happens: no alert is opened or grown, no one notified;
2. a threshold rule fires with the ledger rows that lie in a window holding enough of them, a
   single-event rule with its matches;
3. firing matches join an active alert of the same rule and group whose span they fall within the
   suppression window of, or start a new alert whose id is a fingerprint of rule, group and time bucket;
4. `occurrences` is recounted from the ledger over the alert's span, so a redelivered batch changes
   nothing, and a new alert queues its notifications (one per channel) in the same write.
Notifications still marked "queued" are (re)sent to the notify queue each time their alert is touched;
the delivery log makes the extra copies harmless.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from azure.cosmos import ContainerProxy

from shared.alerts.ledger import MatchRow, qualifying_rows
from shared.alerts.model import (
    ACTIVE_STATUSES,
    MAX_EVENT_REFS,
    AlertEventRef,
    Delivery,
    HistoryEntry,
    NotifyMessage,
    alert_fingerprint,
)
from shared.alerts.ports import AlertDocuments, CurrentRules, MatchHistory
from shared.alerts.suppressions import is_active, record_matches, suppression_id
from shared.ingestion.messages import AlertWorkMessage, EventRef
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.cosmos import read_or_none
from shared.rules.engine import CompiledRule

logger = logging.getLogger(__name__)

MAX_GENERATIONS = 20
SYSTEM_ACTOR = "aoc-functions"


def _holds(alert: dict[str, Any], row: MatchRow) -> bool:
    """Whether a closed alert already counted this match: redelivery and poll overlap replay old events."""
    if any(ref["id"] == row.event_id for ref in alert.get("events", [])):
        return True
    capped = len(alert.get("events", [])) >= MAX_EVENT_REFS
    return capped and alert["first_seen"] <= row.timestamp <= alert["last_seen"]


@dataclass
class AlertReport:
    events: int = 0
    matches: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    notify_messages: list[str] = field(default_factory=list)
    suppressed: int = 0  # matches of suppressed rules and groups: recorded, counted, alerting nothing


def group_actor(shown: dict[str, str], sample: dict[str, Any]) -> str | None:
    """Who an alert is about, for the `actor` filter: the value of its rule's actor grouping
    (`actor.upn|actor.id`), else the actor of the event that opened it."""
    for spec, value in shown.items():
        if value and all(path.strip().startswith("actor.") for path in spec.split("|")):
            return value
    actor = sample.get("actor")
    return str(actor) if actor else None


def event_sample(event: dict[str, Any]) -> dict[str, Any]:
    """The few fields a notification shows about the event that opened an alert."""
    actor = event.get("actor") or {}
    targets = event.get("targets") or []
    target = targets[0] if targets else {}
    return {
        "event_id": event.get("id"),
        "source": event.get("source"),
        "service": event.get("service"),
        "operation": event.get("operation"),
        "result": event.get("result"),
        "actor": actor.get("upn") or actor.get("display") or actor.get("id"),
        "actor_ip": actor.get("ip"),
        "target": target.get("display") or target.get("id"),
        "summary": event.get("summary") or None,
    }


@dataclass
class _Planned:
    document: dict[str, Any]
    is_new: bool
    rows: list[MatchRow] = field(default_factory=list)
    window: dt.timedelta | None = None  # the grouping window of a new alert (None: sliding suppression)

    def span(self) -> tuple[dt.datetime, dt.datetime]:
        times = [parse_utc(self.document["first_seen"]), parse_utc(self.document["last_seen"])]
        times.extend(parse_utc(r.timestamp) for r in self.rows)
        return min(times), max(times)


def _starts_near(alert: dict[str, Any], row: MatchRow, window: dt.timedelta) -> bool:
    """Whether a match could join `alert` under grouping: its first match lies within `window`."""
    return abs(parse_utc(row.timestamp) - parse_utc(alert["first_seen"])) < window


def _grouping_target(planned: list[_Planned], moment: dt.datetime, window: dt.timedelta) -> _Planned | None:
    """The alert a match at `moment` joins (see AlertService._plan_grouped), or None to open one."""
    began_before = [p for p in planned if p.span()[0] <= moment < p.span()[0] + window]
    if began_before:
        return max(began_before, key=lambda p: p.span()[0])
    begins_after = [p for p in planned if moment < p.span()[0] < moment + window]
    return min(begins_after, key=lambda p: p.span()[0]) if begins_after else None


class ChannelRoute(Protocol):
    """What alerting needs of a notification channel: its name and whether it wants a rule's alerts.

    shared.notify.channels.ChannelConfig satisfies it; alerts never import notify (notify reads alerts).
    """

    @property
    def name(self) -> str: ...

    def wants(self, rule_id: str, severity: str) -> bool: ...


class AlertService:
    def __init__(
        self,
        events: ContainerProxy,
        store: AlertDocuments,
        ledger: MatchHistory,
        rules: CurrentRules,
        clock: Clock,
        *,
        channels: Sequence[ChannelRoute],
        dedupe_minutes: float = 15.0,
        group_hours: float | None = None,
        repeat_minutes: float = 240.0,
        read_concurrency: int = 16,
    ) -> None:
        self._events = events
        self._store = store
        self._ledger = ledger
        self._rules = rules
        self._clock = clock
        self._channels = channels
        self._dedupe = dt.timedelta(minutes=dedupe_minutes)
        self._group = dt.timedelta(hours=group_hours) if group_hours else None
        self._repeat = dt.timedelta(minutes=repeat_minutes) if repeat_minutes > 0 else None
        self._pool = concurrent.futures.ThreadPoolExecutor(read_concurrency, thread_name_prefix="alerts")

    # -- reading the batch ---------------------------------------------------------------------------

    def read_events(self, refs: Iterable[EventRef]) -> list[dict[str, Any]]:
        """Point reads, in parallel: 1 RU each in Azure, and no scan on cosmosdb-server."""
        unique = list(dict.fromkeys((ref.id, ref.pk) for ref in refs))
        found = self._pool.map(lambda ref: read_or_none(self._events, ref[0], ref[1]), unique)
        return [document for document in found if document is not None]

    def process(self, message: AlertWorkMessage) -> AlertReport:
        events = self.read_events(message.events)
        missing = len({(r.id, r.pk) for r in message.events}) - len(events)
        if missing:
            logger.warning("%s: %d referenced events were not found", message.blob, missing)
        return self.evaluate(events)

    # -- evaluation ----------------------------------------------------------------------------------

    def evaluate(self, events: list[dict[str, Any]]) -> AlertReport:
        report = AlertReport(events=len(events))
        rule_set = self._rules.current()
        groups: dict[tuple[str, str, str], tuple[CompiledRule, dict[str, str], list[dict[str, Any]]]] = {}
        for event in events:
            if not event.get("timestamp") or not event.get("tenant_id"):
                continue
            for compiled in rule_set.match(event):
                key, shown = compiled.group(event)
                slot = groups.setdefault((event["tenant_id"], compiled.id, key), (compiled, shown, []))
                slot[2].append(event)
                report.matches += 1
        for (tenant_id, _, group_key), (compiled, shown, matched) in sorted(
            groups.items(), key=lambda item: item[0]
        ):
            self._evaluate_group(report, tenant_id, compiled, group_key, shown, matched)
        return report

    def _evaluate_group(
        self,
        report: AlertReport,
        tenant_id: str,
        compiled: CompiledRule,
        group_key: str,
        shown: dict[str, str],
        matched: list[dict[str, Any]],
    ) -> None:
        rule = compiled.rule
        rows = sorted({MatchRow(e["timestamp"], e["id"], e["pk"]) for e in matched})
        self._ledger.record(tenant_id, rule.id, group_key, rows)
        if self._suppressed(tenant_id, rule.id, group_key, rows):
            report.suppressed += len(rows)
            return
        if rule.threshold is not None:
            window = dt.timedelta(minutes=rule.threshold.window_minutes)
            around = self._ledger.between(
                tenant_id,
                rule.id,
                group_key,
                utc_iso(parse_utc(rows[0].timestamp) - window),
                utc_iso(parse_utc(rows[-1].timestamp) + window),
            )
            firing = qualifying_rows(around, rule.threshold.count, window)
            if not firing:
                return
        else:
            firing = rows
        by_id = {e["id"]: e for e in matched}
        grouping = self._group_window(compiled)
        if grouping is not None:
            planned = self._plan_grouped(
                tenant_id, compiled, group_key, shown, firing, by_id, matched, grouping
            )
            self._persist_all(report, tenant_id, rule.id, group_key, planned, None)
            return
        suppress = (
            dt.timedelta(minutes=rule.suppress_minutes) if rule.suppress_minutes is not None else self._dedupe
        )
        since = utc_iso(parse_utc(firing[0].timestamp) - suppress)
        planned = []
        active_id = self._ledger.active_alert(tenant_id, rule.id, group_key)
        active = self._store.get(tenant_id, active_id) if active_id else None
        if active is not None and active.get("status") in ACTIVE_STATUSES and active["last_seen"] >= since:
            planned.append(_Planned(active, is_new=False))
        for row in firing:
            moment = parse_utc(row.timestamp)
            target = next(
                (p for p in planned if p.span()[0] - suppress <= moment <= p.span()[1] + suppress), None
            )
            if target is None:
                sample_event = by_id.get(row.event_id) or matched[0]
                target = _Planned(
                    self._new_alert(tenant_id, compiled, group_key, shown, row, sample_event), True
                )
                planned.append(target)
            target.rows.append(row)
        self._persist_all(report, tenant_id, rule.id, group_key, planned, active_id)

    def _persist_all(
        self,
        report: AlertReport,
        tenant_id: str,
        rule_id: str,
        group_key: str,
        planned: list[_Planned],
        active_id: str | None,
    ) -> None:
        latest: dict[str, Any] | None = None
        for plan in planned:
            if plan.rows:
                stored = self._persist(report, tenant_id, rule_id, group_key, plan)
                if stored is not None and (latest is None or stored["last_seen"] > latest["last_seen"]):
                    latest = stored
        if latest is not None and latest["id"] != active_id:
            self._ledger.set_active_alert(tenant_id, rule_id, group_key, latest["id"])

    def _suppressed(self, tenant_id: str, rule_id: str, group_key: str, rows: list[MatchRow]) -> bool:
        """Whether an active suppression holds the rule and group; if so, count `rows` on it (distinct
        events, under its ETag, so a redelivered batch counts once)."""
        suppressions = self._store.suppressions
        identifier = suppression_id(tenant_id, rule_id, group_key)
        found = suppressions.get(tenant_id, identifier)
        now = self._clock.now()
        if found is None or not is_active(found, now):
            return False
        stored = suppressions.update(
            tenant_id,
            identifier,
            lambda current: is_active(current, now) and record_matches(current, rows),
            found,
        )
        if stored is None or not is_active(stored, now):  # removed meanwhile: alert as usual
            return False
        logger.info("%d matches of %s suppressed by %s", len(rows), rule_id, identifier)
        return True

    # -- grouping windows ---------------------------------------------------------------------------

    def _group_window(self, compiled: CompiledRule) -> dt.timedelta | None:
        """The rule's grouping window, or None for the sliding suppression (suppress_minutes, or no
        ALERT_GROUP_HOURS)."""
        rule = compiled.rule
        if rule.suppress_minutes is not None:
            return None
        if rule.group_minutes is not None:
            return dt.timedelta(minutes=rule.group_minutes)
        return self._group

    def _plan_grouped(
        self,
        tenant_id: str,
        compiled: CompiledRule,
        group_key: str,
        shown: dict[str, str],
        firing: list[MatchRow],
        by_id: dict[str, dict[str, Any]],
        matched: list[dict[str, Any]],
        window: dt.timedelta,
    ) -> list[_Planned]:
        """Each firing match at t joins an open or acknowledged alert of its group whose first match lies
        within `window` of t, else opens one; so the first matches of a group's alerts stay at least
        `window` apart, whatever order the matches arrive in.

        The alert that began at or before t (the latest such) is preferred; otherwise a match that
        arrives late, earlier than every alert near it, joins the earliest alert after it and becomes
        that alert's first match. Each step keeps the spacing (by induction over the matches), which is
        what "one alert per rule and group per window" means; an alert's span can then reach up to twice
        the window when its earlier matches arrive after its later ones.

        One single-partition query per (rule, group) and batch finds every candidate: alerts whose first
        match lies within `window` of the batch's first or last match. Two batches that open the same
        window's first alert at once get the same fingerprint (first match // window) unless their first
        matches straddle a bucket boundary; then two alerts can share a window (rare, and each stays
        exact)."""
        times = [parse_utc(row.timestamp) for row in firing]
        planned = [
            _Planned(found, is_new=False)
            for found in self._store.active_between(
                tenant_id, compiled.id, group_key, utc_iso(min(times) - window), utc_iso(max(times) + window)
            )
        ]
        for row in firing:
            moment = parse_utc(row.timestamp)
            target = _grouping_target(planned, moment, window)
            if target is None:
                sample_event = by_id.get(row.event_id) or matched[0]
                document = self._new_alert(tenant_id, compiled, group_key, shown, row, sample_event, window)
                target = _Planned(document, True, window=window)
                planned.append(target)
            target.rows.append(row)
        return planned

    # -- alert documents ----------------------------------------------------------------------------

    def _bucket(self, moment: dt.datetime, suppress: dt.timedelta) -> int:
        size = max(suppress.total_seconds(), 60.0)
        return int(moment.timestamp() // size)

    def _new_alert(
        self,
        tenant_id: str,
        compiled: CompiledRule,
        group_key: str,
        shown: dict[str, str],
        row: MatchRow,
        sample_event: dict[str, Any],
        window: dt.timedelta | None = None,
    ) -> dict[str, Any]:
        """A new alert; its id buckets its first match by `window` (grouping) or the suppression."""
        rule = compiled.rule
        suppress = (
            dt.timedelta(minutes=rule.suppress_minutes) if rule.suppress_minutes is not None else self._dedupe
        )
        now = utc_iso(self._clock.now())
        bucket = self._bucket(parse_utc(row.timestamp), window or suppress)
        sample = event_sample(sample_event)
        return {
            "id": alert_fingerprint(tenant_id, rule.id, group_key, bucket),
            "pk": tenant_id,
            "type": "alert",
            "tenant_id": tenant_id,
            "rule_id": rule.id,
            "title": rule.title,
            "description": rule.description,
            "severity": rule.severity,
            "mitre": list(rule.mitre),
            "group_key": group_key,
            "group": shown,
            "actor": group_actor(shown, sample),
            "threshold": rule.threshold.model_dump() if rule.threshold else None,
            "status": "open",
            "classification": None,
            "status_changed_by": None,
            "status_changed_at": None,
            "occurrences": 1,
            "first_seen": row.timestamp,
            "last_seen": row.timestamp,
            "events": [],
            "sample": sample,
            "created_at": now,
            "updated_at": now,
            "history": [
                HistoryEntry(at=now, by=SYSTEM_ACTOR, action="created", to_status="open").model_dump()
            ],
            "comments": [],
            "notification_round": 1,
            "notified_at": now,
            "deliveries": self._queued_deliveries(rule.id, rule.severity, 1, now),
            "bucket": bucket,
            "generation": 0,
        }

    def _queued_deliveries(self, rule_id: str, severity: str, round_: int, now: str) -> dict[str, Any]:
        return {
            channel.name: Delivery(
                channel=channel.name, round=round_, status="queued", updated_at=now
            ).model_dump()
            for channel in self._channels
            if channel.wants(rule_id, severity)
        }

    def _merge(
        self, tenant_id: str, rule_id: str, group_key: str, document: dict[str, Any], rows: list[MatchRow]
    ) -> bool:
        """Fold `rows` into the alert; True when anything changed."""
        refs = {e["id"]: e for e in document.get("events", [])}
        for row in rows:
            refs.setdefault(
                row.event_id,
                AlertEventRef(id=row.event_id, pk=row.event_pk, timestamp=row.timestamp).model_dump(),
            )
        ordered = sorted(refs.values(), key=lambda e: (e["timestamp"], e["id"]))[:MAX_EVENT_REFS]
        first = min([document["first_seen"], *(r.timestamp for r in rows)])
        last = max([document["last_seen"], *(r.timestamp for r in rows)])
        occurrences = max(
            self._ledger.count_between(tenant_id, rule_id, group_key, first, last), len(ordered), 1
        )
        changed = (
            ordered != document.get("events")
            or first != document["first_seen"]
            or last != document["last_seen"]
            or occurrences != document["occurrences"]
        )
        if not changed:
            return False
        now = self._clock.now()
        grew = occurrences > document["occurrences"]
        document.update(
            events=ordered, first_seen=first, last_seen=last, occurrences=occurrences, updated_at=utc_iso(now)
        )
        if (
            grew
            and self._repeat is not None
            and document.get("status") == "open"
            and document.get("notified_at")
        ) and now - parse_utc(document["notified_at"]) >= self._repeat:
            round_ = int(document.get("notification_round", 1)) + 1
            document["notification_round"] = round_
            document["notified_at"] = utc_iso(now)
            document["deliveries"] = self._queued_deliveries(
                rule_id, document["severity"], round_, utc_iso(now)
            )
        return True

    def _persist(
        self, report: AlertReport, tenant_id: str, rule_id: str, group_key: str, plan: _Planned
    ) -> dict[str, Any] | None:
        stored: dict[str, Any] | None = None
        if plan.is_new:
            document = plan.document
            for generation in range(MAX_GENERATIONS):
                if generation:
                    document["generation"] = generation
                    document["id"] = alert_fingerprint(
                        tenant_id, rule_id, group_key, document["bucket"], generation
                    )
                self._merge(tenant_id, rule_id, group_key, document, plan.rows)
                if self._store.create(document):
                    stored = document
                    report.created.append(document["id"])
                    logger.info(
                        "alert %s opened: %s (%s)", document["id"], document["title"], group_key or "no group"
                    )
                    break
                existing = self._store.get(tenant_id, document["id"])
                if existing is not None and existing.get("status") in ACTIVE_STATUSES:
                    if plan.window is not None and not _starts_near(existing, plan.rows[0], plan.window):
                        # The alert that first held this id has since moved its first match back (a
                        # late, earlier match) and is another window's: this one takes the next id.
                        continue
                    plan.document, plan.is_new = existing, False
                    break
                if existing is not None:
                    unseen = [row for row in plan.rows if not _holds(existing, row)]
                    if not unseen:
                        logger.info("alert %s is %s and already holds these matches", existing["id"],
                                    existing.get("status"))  # fmt: skip
                        return None
                    plan.rows = unseen
                    first = unseen[0].timestamp
                    document.update(events=[], first_seen=first, last_seen=first, occurrences=1)
            else:
                raise RuntimeError(f"rule {rule_id}: no free alert id after {MAX_GENERATIONS} generations")
        if stored is None:
            rows = plan.rows
            stored = self._store.update(
                tenant_id,
                plan.document["id"],
                lambda current: self._merge(tenant_id, rule_id, group_key, current, rows),
            )
            if stored is None:
                return None
            if stored.get("_etag") != plan.document.get("_etag"):
                report.updated.append(stored["id"])
        for delivery in (stored.get("deliveries") or {}).values():
            if delivery.get("status") == "queued" and delivery.get("round") == stored.get(
                "notification_round", 1
            ):
                report.notify_messages.append(
                    NotifyMessage(
                        alert_id=stored["id"],
                        pk=stored["pk"],
                        channel=delivery["channel"],
                        round=delivery["round"],
                    ).model_dump_json()
                )
        return stored
