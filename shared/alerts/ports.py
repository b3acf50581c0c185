"""The alerting stores as the services use them, as Protocols.

AlertService, SourceHealthCheck and update_alert are typed against these, not against the Cosmos and
Table adapters (AlertStore, MatchLedger) or the rule cache (RuleSource), so a fake is checked by mypy
against the same shape as the real store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

from shared.alerts.ledger import MatchRow
from shared.platform.cosmos import Mutation
from shared.rules.engine import RuleSet


class SuppressionDocuments(Protocol):
    """Suppressions as alert evaluation reads and counts them: shared.alerts.suppressions.SuppressionStore."""

    def get(self, tenant_id: str, suppression_id: str) -> dict[str, Any] | None: ...

    def update(
        self, tenant_id: str, suppression_id: str, mutate: Mutation, current: dict[str, Any] | None = None
    ) -> dict[str, Any] | None: ...


class AlertDocuments(Protocol):
    """Alert documents, written create-if-absent or ETag-guarded: shared.alerts.store.AlertStore."""

    @property
    def suppressions(self) -> SuppressionDocuments: ...

    def get(self, tenant_id: str, alert_id: str) -> dict[str, Any] | None: ...

    def active_between(
        self, tenant_id: str, rule_id: str, group_key: str, first: str, last: str
    ) -> list[dict[str, Any]]: ...

    def create(self, document: dict[str, Any]) -> bool: ...

    def update(self, tenant_id: str, alert_id: str, mutate: Mutation) -> dict[str, Any] | None: ...


class MatchHistory(Protocol):
    """The match ledger as evaluation reads and writes it: shared.alerts.ledger.MatchLedger."""

    def record(self, tenant_id: str, rule_id: str, group_key: str, rows: Iterable[MatchRow]) -> None: ...

    def between(
        self, tenant_id: str, rule_id: str, group_key: str, first: str, last: str
    ) -> list[MatchRow]: ...

    def count_between(self, tenant_id: str, rule_id: str, group_key: str, first: str, last: str) -> int: ...

    def active_alert(self, tenant_id: str, rule_id: str, group_key: str) -> str | None: ...

    def set_active_alert(self, tenant_id: str, rule_id: str, group_key: str, alert_id: str) -> None: ...


class LedgerRetention(Protocol):
    """The match ledger as the health timer prunes it: shared.alerts.ledger.MatchLedger."""

    def prune(self, older_than: dt.datetime) -> int: ...


class CurrentRules(Protocol):
    """The rules in force: shared.rules.source.RuleSource."""

    def current(self) -> RuleSet: ...
