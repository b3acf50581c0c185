"""How busy each rule was lately: its matches and alerts in the last 7 days, for GET /api/rules.

Two reads for all the rules together, never one per rule:

- matches: one Table Storage query over the tenant's match ledger partitions (shared.alerts.ledger,
  a PartitionKey range `<tenant>|` .. `<tenant>}`), row keys (which begin with the event time) from the
  window's start on, returning PartitionKey only; counted per rule here. It reads through the tenant's
  ledger rows (kept 30 days), one page per 1,000 rows returned, and costs no Cosmos RUs.
- alerts: one single-partition Cosmos query (pk = tenant) returning one rule id per alert whose first
  match lies in the window (`c.type = 'alert'`, so other documents of the container are left out);
  counted here, as cosmosdb-server has no GROUP BY. A few RUs per hundred alerts.

Both are cached per API instance for CACHE_SECONDS, per privacy view. The ledger does not record
which service an event came from, so a caller from whom sensitive services are hidden gets no match
counts (null), and alert counts without the hidden alerts, as GET /api/alerts/summary counts them.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Protocol

from azure.cosmos import ContainerProxy
from pydantic import BaseModel, Field

from shared.api.alerts_api import _hidden_conditions
from shared.api.events_query import SensitivityPolicy
from shared.platform.clock import Clock, utc_iso

WINDOW = dt.timedelta(days=7)
CACHE_SECONDS = 60.0


class MatchCounts(Protocol):
    """The match ledger as the counts read it: shared.alerts.ledger.MatchLedger."""

    def matches_per_rule(self, tenant_id: str, since: str) -> dict[str, int]: ...


class RuleCounts(BaseModel):
    matches: int | None = Field(
        description="events that matched the rule (match ledger rows); null for a caller from whom "
        "sensitive services are hidden, as the ledger does not say which service an event came from"
    )
    alerts: int = Field(
        description="alerts whose first match lies in the window (hidden ones left out for a caller "
        "without AOC.Privacy)"
    )


def no_activity(hide: SensitivityPolicy | None) -> RuleCounts:
    """The counts of a rule that had neither matches nor alerts in the window."""
    return RuleCounts(matches=0 if hide is None else None, alerts=0)


class RuleActivity:
    def __init__(
        self,
        ledger: MatchCounts,
        alerts: ContainerProxy,
        tenant_id: str,
        clock: Clock,
        *,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._ledger = ledger
        self._alerts = alerts
        self._tenant_id = tenant_id
        self._clock = clock
        self._ttl = dt.timedelta(seconds=cache_seconds)
        self._lock = threading.Lock()
        self._cache: dict[bool, tuple[dt.datetime, str, dict[str, RuleCounts]]] = {}

    def last_7_days(self, hide: SensitivityPolicy | None) -> tuple[str, dict[str, RuleCounts]]:
        """The window's start (UTC ISO-8601) and the counts of every rule that has any; a rule not
        in the answer had none."""
        now = self._clock.now()
        key = hide is None
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < self._ttl:
                return cached[1], cached[2]
        since = utc_iso(now - WINDOW)
        matches = self._ledger.matches_per_rule(self._tenant_id, since) if hide is None else None
        alerts = self._alerts_per_rule(since, hide)
        counts = {
            rule_id: RuleCounts(matches=(matches or {}).get(rule_id, 0) if hide is None else None, alerts=n)
            for rule_id, n in alerts.items()
        }
        for rule_id, n in (matches or {}).items():
            counts.setdefault(rule_id, RuleCounts(matches=n, alerts=0))
        with self._lock:
            self._cache[key] = (now, since, counts)
        return since, counts

    def _alerts_per_rule(self, since: str, hide: SensitivityPolicy | None) -> dict[str, int]:
        where = ["c.pk = @pk", "c.type = 'alert'", "c.first_seen >= @since"]
        params: list[dict[str, Any]] = [
            {"name": "@pk", "value": self._tenant_id},
            {"name": "@since", "value": since},
        ]
        hidden, hidden_params = _hidden_conditions(hide)
        where += hidden
        params += hidden_params
        sql = f"SELECT VALUE c.rule_id FROM c WHERE {' AND '.join(where)}"  # noqa: S608 - constant fragments
        counts: dict[str, int] = {}
        for rule_id in self._alerts.query_items(sql, parameters=params, partition_key=self._tenant_id):
            counts[str(rule_id)] = counts.get(str(rule_id), 0) + 1
        return counts
