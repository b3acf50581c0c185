"""Every event that matched a rule, in Table Storage: one row per (rule, group, event).

Why Table Storage and not a Cosmos query over events: a row's key is derived from the event, so a
redelivered batch writes the same rows again and counts stay exact; rows sort by event time inside one
partition per (tenant, rule, group), so "how many in this window" is one range query whatever order the
events arrived in; and it costs no Cosmos RUs or cross-partition queries (events are partitioned by
month, and a window can span two).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.platform.clock import parse_utc, utc_iso


@dataclass(frozen=True, order=True)
class MatchRow:
    timestamp: str  # UTC ISO-8601 with milliseconds and Z: sorts as text
    event_id: str
    event_pk: str


def _partition(tenant_id: str, rule_id: str, group_key: str) -> str:
    digest = hashlib.sha256(group_key.encode("utf-8")).hexdigest()[:32]
    return f"{tenant_id}|{rule_id}|{digest}"


def _row_key(row: MatchRow) -> str:
    return f"{row.timestamp}|{hashlib.sha256(row.event_id.encode('utf-8')).hexdigest()[:24]}"


MAX_BATCH = 100  # Table Storage entity group transaction limit
ACTIVE_ALERT_ROW = "~active"  # sorts after every "YYYY-..." match row, so range reads never see it


class MatchLedger:
    """Also remembers, per (tenant, rule, group), the alert that absorbs new matches: a point read
    instead of a query over the alerts container."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def active_alert(self, tenant_id: str, rule_id: str, group_key: str) -> str | None:
        try:
            entity = self._table.get_entity(_partition(tenant_id, rule_id, group_key), ACTIVE_ALERT_ROW)
        except ResourceNotFoundError:
            return None
        return str(entity["AlertId"])

    def set_active_alert(self, tenant_id: str, rule_id: str, group_key: str, alert_id: str) -> None:
        self._table.upsert_entity(
            {
                "PartitionKey": _partition(tenant_id, rule_id, group_key),
                "RowKey": ACTIVE_ALERT_ROW,
                "AlertId": alert_id,
            },
            mode=UpdateMode.REPLACE,
        )

    def record(self, tenant_id: str, rule_id: str, group_key: str, rows: Iterable[MatchRow]) -> None:
        """Upsert one row per match: writing the same match twice leaves one row."""
        partition = _partition(tenant_id, rule_id, group_key)
        entities = {
            _row_key(row): {
                "PartitionKey": partition,
                "RowKey": _row_key(row),
                "EventId": row.event_id,
                "EventPk": row.event_pk,
                "EventTime": row.timestamp,
            }
            for row in rows
        }
        operations = [("upsert", entity, {"mode": UpdateMode.REPLACE}) for entity in entities.values()]
        for start in range(0, len(operations), MAX_BATCH):  # one partition: one transaction per 100 rows
            self._table.submit_transaction(operations[start : start + MAX_BATCH])

    def between(self, tenant_id: str, rule_id: str, group_key: str, first: str, last: str) -> list[MatchRow]:
        """The rows with first <= event time <= last, oldest first."""
        partition = _partition(tenant_id, rule_id, group_key)
        entities = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": partition, "lo": first, "hi": last + "|~"},
            select=["EventId", "EventPk", "EventTime"],
        )
        return sorted(MatchRow(e["EventTime"], e["EventId"], e["EventPk"]) for e in entities)

    def count_between(self, tenant_id: str, rule_id: str, group_key: str, first: str, last: str) -> int:
        partition = _partition(tenant_id, rule_id, group_key)
        entities = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": partition, "lo": first, "hi": last + "|~"},
            select=["RowKey"],
        )
        return sum(1 for _ in entities)

    def matches_per_rule(self, tenant_id: str, since: str) -> dict[str, int]:
        """How many rows each rule of the tenant has whose event time is `since` or later: one query over
        the tenant's partitions (a PartitionKey range), row keys from `since` on (the active-alert rows
        sort after every match row and are left out), PartitionKey only."""
        counts: dict[str, int] = {}
        prefix = f"{tenant_id}|"
        entities = self._table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi and RowKey ge @since and RowKey lt @active",
            parameters={"lo": prefix, "hi": f"{tenant_id}}}", "since": since, "active": ACTIVE_ALERT_ROW},
            select=["PartitionKey"],
        )
        for entity in entities:
            rule_id = str(entity["PartitionKey"])[len(prefix) :].rsplit("|", 1)[0]
            counts[rule_id] = counts.get(rule_id, 0) + 1
        return counts

    def prune(self, older_than: dt.datetime) -> int:
        """Delete rows whose event is older than `older_than` (Table Storage has no TTL)."""
        cutoff = utc_iso(older_than)
        removed = 0
        for entity in self._table.query_entities(
            "EventTime lt @cutoff", parameters={"cutoff": cutoff}, select=["PartitionKey", "RowKey"]
        ):
            self._table.delete_entity(
                entity["PartitionKey"], entity["RowKey"], match_condition=MatchConditions.Unconditionally
            )
            removed += 1
        return removed


def qualifying_rows(rows: list[MatchRow], count: int, window: dt.timedelta) -> list[MatchRow]:
    """Rows that lie in some window of length `window` holding at least `count` rows (sorted input).

    Order of arrival does not matter: the answer depends only on the set of rows.
    """
    if len(rows) < count:
        return []
    times = [parse_utc(r.timestamp) for r in rows]
    marked = [False] * len(rows)
    end = 0
    for start in range(len(rows)):
        end = max(end, start)
        while end + 1 < len(rows) and times[end + 1] - times[start] <= window:
            end += 1
        if end - start + 1 >= count:
            for i in range(start, end + 1):
                marked[i] = True
    return [row for row, keep in zip(rows, marked, strict=True) if keep]
