"""The read side of the API built from one set of dependencies: event search, alerts and the audit log.

The routes themselves live with their resources (shared.api.events_api, alerts_api, audit); this
only builds those three resources together and exposes their routes under one object, the shape
tests/integration/test_alerts_api.py builds. The app builds each resource in shared.app.runtime.
"""

from __future__ import annotations

from azure.cosmos import ContainerProxy

from shared.alerts.store import AlertStore
from shared.api.alerts_api import AlertsApi, AlertSearch
from shared.api.audit import AuditApi, AuditLog
from shared.api.events_api import EventSearchApi
from shared.api.events_query import EventSearch
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard
from shared.platform.clock import Clock


class ApiService:
    def __init__(
        self,
        guard: ApiGuard,
        search: EventSearch,
        events: ContainerProxy,
        tenant_id: str,
        clock: Clock,
        alert_search: AlertSearch,
        alert_store: AlertStore,
        audit: AuditLog,
        signer: ContinuationSigner,
    ) -> None:
        self.events = EventSearchApi(guard, search, events, tenant_id, clock)
        self.alerts = AlertsApi(guard, alert_search, alert_store, audit, tenant_id, clock)
        self.audit = AuditApi(guard, audit, signer)
        self.list_events = self.events.list_events
        self.get_event = self.events.get_event
        self.list_alerts = self.alerts.list_alerts
        self.alerts_summary = self.alerts.alerts_summary
        self.get_alert = self.alerts.get_alert
        self.patch_alert = self.alerts.patch_alert
        self.list_audit = self.audit.list_audit
