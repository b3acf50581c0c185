"""The composition root: builds each service once per process from settings and shared clients.

Longer than 400 lines on purpose: it is one flat list of cached factories, one per service, that together
are the whole wiring of the app, and reset_runtime() clears them all. Split by domain, the factories would
import one another across files (the API needs the alert store, the poller the probe) for no gain.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from collections.abc import Callable
from functools import cache
from typing import Any

from shared.alerts.ledger import MatchLedger
from shared.alerts.service import AlertService
from shared.alerts.staleness import SourceHealthCheck
from shared.alerts.store import AlertStore
from shared.api.alerts_api import AlertsApi, AlertSearch
from shared.api.audit import AuditApi, AuditLog
from shared.api.auth import ApiAudience, Authenticator, EntraTokenVerifier, JwksCache, effective_roles
from shared.api.cors import CorsPolicy
from shared.api.datasets_api import DatasetsApi
from shared.api.events_api import EventsApi
from shared.api.events_query import EventSearch, SensitivityPolicy
from shared.api.governance_api import (
    CosmosObjectAuditTrail,
    GovernanceApi,
    GovernanceStatus,
    governance_status,
)
from shared.api.health import HealthReport, check_health, source_health
from shared.api.history_api import ObjectHistory, ObjectsApi
from shared.api.operations_api import OperationsApi
from shared.api.paging import ContinuationSigner
from shared.api.queues_api import QueuesApi
from shared.api.refresh_limits import CallerRateLimit
from shared.api.responses import ApiGuard
from shared.api.routing import Resource
from shared.api.rule_activity import RuleActivity
from shared.api.rules_api import RulesApi
from shared.api.searches_api import SearchesApi
from shared.api.status_api import StatusApi
from shared.datasets.events_runner import EventsRunner
from shared.datasets.log_analytics import LogAnalyticsRunner, build_logs_client
from shared.datasets.querying import QueryRunner
from shared.datasets.refresh import RefreshService
from shared.datasets.sources import SourceCatalog, SourceKind, sources_blob_reader
from shared.datasets.store import DatasetStore
from shared.governance.alerting import FindingAlerts
from shared.governance.config import ValidatorSet, load_default_validators
from shared.governance.delta_state import TableDeltaStateStore
from shared.governance.discovery import GovernanceDiscovery, scope_filter
from shared.governance.notes_writer import GraphNotesWriter
from shared.governance.pipeline import FindingPublisher, GovernancePipeline
from shared.governance.service import GovernanceService
from shared.governance.store import (
    CosmosActivityStore,
    CosmosAuditSink,
    CosmosGovernanceStore,
    TableUpdateClaims,
)
from shared.ingestion.archive import RawArchive
from shared.ingestion.enrichment import DirectoryNameResolver
from shared.ingestion.event_store import EventStore
from shared.ingestion.ingest import IngestService
from shared.ingestion.sources.graph import GraphCollector, reset_rate_limiters
from shared.ingestion.sources.handoff import PageHandOff
from shared.ingestion.sources.management import ManagementCollector, watermark_key
from shared.ingestion.watermarks import FailedContent, HandedOffContent, WatermarkStore
from shared.m365.auth import TokenProvider, build_token_provider
from shared.m365.cloud import CloudEndpoints, resolve_endpoints
from shared.m365.http_client import ApiClient
from shared.m365.http_transport import httpx_timeout, shared_http_client
from shared.notify.channels import ChannelConfig, parse_channels
from shared.notify.delivery import NotificationService
from shared.notify.delivery_log import DeliveryLog
from shared.platform.clients import get_clients
from shared.platform.clock import Clock, SystemClock, build_clock
from shared.platform.resources import BlobContainers, CosmosContainers, Queues, Tables
from shared.platform.settings import AppSettings, get_settings
from shared.probe.devops import PipelineTriggerService, build_devops_client
from shared.probe.poller import Poller
from shared.probe.scopes import DriftConfig, load_drift_config
from shared.probe.service import ProbeService
from shared.probe.state import ProbeWindows
from shared.probe.store import ProbeStateStore
from shared.probe.trigger_log import TriggerRuns
from shared.rules.engine import BusinessHours
from shared.rules.source import RuleSource, blob_reader
from shared.searches.store import SearchStore

logger = logging.getLogger(__name__)


@cache
def app_clock() -> Clock:
    s = get_settings()
    return build_clock(s.clock_epoch, s.clock_speed, s.clock_started_at)


@cache
def endpoints() -> CloudEndpoints:
    s = get_settings()
    return resolve_endpoints(
        s.cloud,
        authority_host=s.authority_host,
        graph_base=s.graph_base_url,
        management_base=s.management_base_url,
    )


def _tenant_id(s: AppSettings) -> str:
    if not s.tenant_id:
        raise ValueError("M365_TENANT_ID is not set")
    return s.tenant_id


def tenant_id() -> str:
    """The tenant this app serves (M365_TENANT_ID)."""
    return _tenant_id(get_settings())


@cache
def token_provider() -> TokenProvider:
    s = get_settings()
    return build_token_provider(
        s.auth_mode,
        tenant_id=s.tenant_id,
        client_id=s.client_id,
        authority_host=endpoints().authority_host,
        client_secret=s.client_secret.get_secret_value() if s.client_secret else None,
        certificate_pem=s.certificate_pem.get_secret_value() if s.certificate_pem else None,
        certificate_thumbprint=s.certificate_thumbprint,
        static_token=s.static_token.get_secret_value() if s.static_token else None,
        managed_identity_client_id=s.managed_identity_client_id,
    )


@cache
def api_client() -> ApiClient:
    s = get_settings()
    return ApiClient(token_provider(), timeout=(s.http_connect_timeout_seconds, s.http_read_timeout_seconds))


def enabled_graph_sources(s: AppSettings) -> list[str]:
    switches = (
        ("entra_audit", s.source_entra_audit),
        ("entra_signin", s.source_entra_signin),
        ("intune_audit", s.source_intune_audit),
    )
    return [name for name, enabled in switches if enabled]


@cache
def watermark_store() -> WatermarkStore:
    return WatermarkStore(get_clients().table(Tables.WATERMARKS), get_settings().tenant_id or "default")


@cache
def raw_archive() -> RawArchive:
    return RawArchive(get_clients().blob_service)


@cache
def poller() -> Poller:
    s = get_settings()
    clients = get_clients()
    clock = app_clock()
    handoff = PageHandOff(raw_archive(), clients.queue(Queues.INGEST), s.tenant_id)
    graph_sources = enabled_graph_sources(s)
    cloud = endpoints()
    graph = GraphCollector(
        api_client(),
        cloud.graph_base,
        cloud.graph_scope,
        handoff,
        watermark_store(),
        clock,
        overlap_seconds=s.graph_window_overlap_seconds,
        initial_lookback_seconds=s.initial_lookback_seconds,
    )
    management = None
    if s.source_o365_management:
        management = ManagementCollector(
            api_client(),
            cloud.management_base,
            _tenant_id(s),
            cloud.management_scope,
            handoff,
            watermark_store(),
            HandedOffContent(clients.table(Tables.HANDED_OFF_CONTENT), _tenant_id(s)),
            clock,
            failed=FailedContent(clients.table(Tables.FAILED_CONTENT), _tenant_id(s)),
            overlap_seconds=s.management_overlap_seconds,
            initial_lookback_seconds=s.initial_lookback_seconds,
        )
    return Poller(
        graph if graph_sources else None,
        management,
        watermark_store(),
        clock,
        graph_sources=graph_sources,
        content_types=s.enabled_content_types if management else [],
        time_budget_seconds=s.poll_time_budget_seconds,
        probe=probe_service() if s.probe_enabled else None,
        tenant_id=s.tenant_id,
    )


@cache
def drift_config() -> DriftConfig:
    return load_drift_config(get_settings().drift_file)


def probe_windows() -> ProbeWindows:
    s = get_settings()
    return ProbeWindows(
        quiet=dt.timedelta(minutes=s.probe_quiet_window_minutes),
        cooldown=dt.timedelta(minutes=s.probe_cooldown_minutes),
        audit_latency=dt.timedelta(minutes=s.probe_audit_latency_minutes),
        clock_skew=dt.timedelta(seconds=s.probe_clock_skew_seconds),
    )


@cache
def probe_service() -> ProbeService:
    clients = get_clients()
    return ProbeService(
        ProbeStateStore(clients.table(Tables.PROBE_STATE)),
        drift_config(),
        clients.queue(Queues.BACKUP_TRIGGER),
        probe_windows(),
    )


@cache
def pipeline_trigger_service() -> PipelineTriggerService:
    # One attempt per POST: the service retries only what Azure DevOps certainly did not act on.
    devops = build_devops_client(get_settings(), max_attempts=1)
    clients = get_clients()
    return PipelineTriggerService(
        devops,
        drift_config(),
        clients.table(Tables.TRIGGER_LOG),
        app_clock(),
        clients.queue(Queues.BACKUP_TRIGGER),
    )


@cache
def event_store() -> EventStore:
    clients = get_clients()
    return EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        get_settings().cosmos_write_concurrency,
    )


@cache
def ingest_service() -> IngestService:
    s = get_settings()
    clock = app_clock()
    store = event_store()
    resolver = None
    if s.enrichment_enabled:
        cloud = endpoints()
        resolver = DirectoryNameResolver(
            api_client(),
            cloud.graph_base,
            cloud.graph_scope,
            get_clients().table(Tables.DIRECTORY_NAMES),
            clock,
            s.enrichment_cache_ttl_seconds,
        )
    return IngestService(
        raw_archive(),
        store,
        watermark_store(),
        _tenant_id(s),
        clock,
        keep_raw=s.keep_raw_in_event,
        resolver=resolver,
    )


def business_hours() -> BusinessHours:
    s = get_settings()
    return BusinessHours.parse(s.alert_business_hours, s.alert_business_days, s.alert_timezone)


def rule_lists() -> dict[str, list[str | int | float | bool]]:
    """The rule lists that come from settings rather than from the rule file."""
    s = get_settings()
    extra_lists: dict[str, list[str | int | float | bool]] = {}
    if s.internal_domains:
        extra_lists["internal_domains"] = list(s.internal_domains)
    if s.privileged_accounts:
        extra_lists["privileged_accounts"] = list(s.privileged_accounts)
    return extra_lists


@cache
def rule_source() -> RuleSource:
    return RuleSource(
        business_hours(),
        app_clock(),
        override=blob_reader(get_clients().blob_service.get_container_client(BlobContainers.CONFIG)),
        extra_lists=rule_lists(),
        ttl_seconds=get_settings().alert_rules_cache_seconds,
    )


@cache
def alert_channels() -> list[ChannelConfig]:
    s = get_settings()
    return parse_channels(s.alert_channels.get_secret_value() if s.alert_channels else None)


@cache
def alert_store() -> AlertStore:
    return AlertStore(get_clients().cosmos_container(CosmosContainers.ALERTS.name))


@cache
def alert_service() -> AlertService:
    s = get_settings()
    clients = get_clients()
    return AlertService(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        alert_store(),
        MatchLedger(clients.table(Tables.ALERT_MATCHES)),
        rule_source(),
        app_clock(),
        channels=alert_channels(),
        dedupe_minutes=s.alert_dedupe_minutes,
        group_hours=s.alert_group_hours,
        repeat_minutes=s.alert_repeat_minutes,
        read_concurrency=s.cosmos_write_concurrency,
    )


def enabled_source_keys(s: AppSettings) -> set[str]:
    """The watermark keys of every source this app polls."""
    keys = set(enabled_graph_sources(s))
    if s.source_o365_management:
        keys.update(watermark_key(content_type) for content_type in s.enabled_content_types)
    return keys


@cache
def source_health_check() -> SourceHealthCheck:
    s = get_settings()
    return SourceHealthCheck(
        watermark_store(),
        alert_service(),
        MatchLedger(get_clients().table(Tables.ALERT_MATCHES)),
        app_clock(),
        enabled_sources=enabled_source_keys(s),
        tenant_id=_tenant_id(s),
        poll_interval_seconds=s.poll_interval_seconds,
    )


@cache
def webhook_client() -> ApiClient:
    """Webhooks get their own client: short timeouts, few attempts, no token."""
    s = get_settings()
    return ApiClient(
        None,
        timeout=(s.http_connect_timeout_seconds, min(s.http_read_timeout_seconds, 15.0)),
        max_attempts=4,
        max_retry_after=60.0,
    )


@cache
def notification_service() -> NotificationService:
    s = get_settings()
    return NotificationService(
        alert_store(),
        DeliveryLog(get_clients().table(Tables.DELIVERY_LOG), app_clock()),
        alert_channels(),
        webhook_client(),
        app_clock(),
        link_base_url=s.alert_link_base_url,
    )


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@cache
def api_guard() -> ApiGuard:
    s = get_settings()
    clock = app_clock()
    tenant = _tenant_id(s)
    verifier = None
    if s.api_auth_mode == "entra":
        client_id, app_id_uri = s.api_token_audience
        cloud = endpoints()
        keys_url = f"{cloud.authority_host}/{tenant}/discovery/v2.0/keys"
        timeout = httpx_timeout((s.http_connect_timeout_seconds, s.http_read_timeout_seconds))

        def fetch_keys() -> dict[str, object]:
            response = shared_http_client().get(keys_url, timeout=timeout)
            response.raise_for_status()
            return dict(response.json())

        verifier = EntraTokenVerifier(
            JwksCache(fetch_keys, clock),
            ApiAudience(client_id=client_id, app_id_uri=app_id_uri),
            _csv(s.api_allowed_tenants) or [tenant],
            cloud,
            clock,
        )
    authenticator = Authenticator(
        verifier=verifier,
        swa_enabled=s.api_auth_mode == "swa",
        key_roles=effective_roles(_csv(s.api_key_roles)) if s.api_auth_mode == "keys" else frozenset(),
    )
    sensitivity = SensitivityPolicy(
        services=_csv(s.api_sensitive_services), operations=_csv(s.api_sensitive_operations)
    )
    return ApiGuard(authenticator, sensitivity)


@cache
def continuation_signer() -> ContinuationSigner:
    s = get_settings()
    if s.api_continuation_secret:
        return ContinuationSigner(s.api_continuation_secret.get_secret_value().encode("utf-8"))
    logger.warning("API_CONTINUATION_SECRET is not set: continuation tokens work on this instance only")
    return ContinuationSigner(secrets.token_bytes(32))


@cache
def events_api() -> EventsApi:
    s = get_settings()
    clients = get_clients()
    tenant = _tenant_id(s)
    events = clients.cosmos_container(CosmosContainers.EVENTS.name)
    store = event_store()
    return EventsApi(
        api_guard(),
        events,
        EventSearch(events, continuation_signer(), tenant),
        store,
        raw_archive(),
        audit_log(),
        tenant,
        app_clock(),
        export_max=s.api_export_max_events,
        bulk_max=s.api_bulk_tag_max_events,
        time_counts=store.time_counts,
        retention_days=s.event_retention_days,
    )


@cache
def alerts_api() -> AlertsApi:
    tenant = _tenant_id(get_settings())
    alerts = AlertSearch(
        get_clients().cosmos_container(CosmosContainers.ALERTS.name), continuation_signer(), tenant
    )
    return AlertsApi(api_guard(), alerts, alert_store(), audit_log(), tenant, app_clock())


@cache
def audit_api() -> AuditApi:
    return AuditApi(api_guard(), audit_log(), continuation_signer())


def health_report() -> HealthReport:
    """The dependencies' health now; when they are healthy, each source's staleness as well."""
    s = get_settings()
    report = check_health(get_clients(), SystemClock(), s.health_timeout_seconds)
    if report.status == "ok":
        report.sources = source_health(watermark_store().all(), app_clock().now(), s.poll_interval_seconds)
    return report


def openapi_document() -> dict[str, Any]:
    from shared.api.catalog import openapi_json  # imports every route module: only when asked for

    return openapi_json()


@cache
def operations_api() -> OperationsApi:
    return OperationsApi(health_report, openapi_document)


@cache
def rules_api() -> RulesApi:
    clients = get_clients()
    tenant = _tenant_id(get_settings())
    events = clients.cosmos_container(CosmosContainers.EVENTS.name)
    return RulesApi(
        api_guard(),
        rule_source(),
        clients.blob_service.get_container_client(BlobContainers.CONFIG),
        EventSearch(events, continuation_signer(), tenant),
        audit_log(),
        business_hours(),
        app_clock(),
        extra_lists=rule_lists(),
        activity=RuleActivity(
            MatchLedger(clients.table(Tables.ALERT_MATCHES)),
            clients.cosmos_container(CosmosContainers.ALERTS.name),
            tenant,
            app_clock(),
        ),
    )


@cache
def status_api() -> StatusApi:
    s = get_settings()
    return StatusApi(
        api_guard(),
        watermark_store(),
        probe_service().status if s.probe_enabled else None,
        get_clients().queue_service,
        app_clock(),
        s.poll_interval_seconds,
        lambda: poller().run(),
        audit_log(),
        expected_sources=enabled_source_keys(s),
        configuration=s.configuration_issues(),
        commit=s.commit,
        trigger_runs=TriggerRuns(get_clients().table(Tables.TRIGGER_LOG)).run if s.probe_enabled else None,
        governance=governance_api_status,
    )


@cache
def queues_api() -> QueuesApi:
    return QueuesApi(api_guard(), get_clients().queue_service, audit_log())


@cache
def searches_api() -> SearchesApi:
    tenant = _tenant_id(get_settings())
    store = SearchStore(get_clients().cosmos_container(CosmosContainers.SEARCHES.name), tenant)
    return SearchesApi(api_guard(), store, audit_log(), tenant, app_clock())


@cache
def objects_api() -> ObjectsApi:
    tenant = _tenant_id(get_settings())
    events = get_clients().cosmos_container(CosmosContainers.EVENTS.name)
    return ObjectsApi(api_guard(), ObjectHistory(events, continuation_signer(), tenant), app_clock())


@cache
def governance_validators() -> ValidatorSet:
    return load_default_validators()


@cache
def governance_store() -> CosmosGovernanceStore:
    return CosmosGovernanceStore(get_clients().cosmos_container(CosmosContainers.GOVERNANCE.name))


@cache
def governance_activities() -> CosmosActivityStore:
    return CosmosActivityStore(get_clients().cosmos_container(CosmosContainers.GOVERNANCE.name))


@cache
def governance_service() -> GovernanceService:
    s = get_settings()
    clients = get_clients()
    cloud = endpoints()
    writer = None
    if s.governance_update_mode == "Update":
        writer = GraphNotesWriter(api_client(), cloud.graph_scope, cloud.graph_base)
    return GovernanceService(
        governance_store(),
        governance_activities(),
        CosmosAuditSink(clients.cosmos_container(CosmosContainers.AUDIT.name)),
        TableUpdateClaims(clients.table(Tables.GOVERNANCE_UPDATES)),
        writer,
        governance_validators,
        mode=s.governance_update_mode,
        graph_base=cloud.graph_base,
    )


@cache
def governance_discovery() -> GovernanceDiscovery:
    s = get_settings()
    cloud = endpoints()
    return GovernanceDiscovery(
        api_client(),
        cloud.graph_base,
        cloud.graph_scope,
        TableDeltaStateStore(get_clients().table(Tables.GOVERNANCE_DELTA)),
        app_clock(),
        in_scope=scope_filter(governance_validators()),
        full_sweep_every=dt.timedelta(hours=s.governance_full_sweep_hours)
        if s.governance_full_sweep_hours
        else None,
    )


@cache
def governance_finding_alerts() -> FindingAlerts:
    """Findings opened by an evaluation become events and alerts (shared.governance.alerting)."""
    return FindingAlerts(event_store(), alert_service(), app_clock())


# -- activity datasets (issue 19) ---------------------------------------------------------------------


@cache
def dataset_sources() -> SourceCatalog:
    """The dataset sources in force: the shipped sources.yaml, or the blob config/sources.yaml."""
    config = get_clients().blob_service.get_container_client(BlobContainers.CONFIG)
    return SourceCatalog(app_clock(), override=sources_blob_reader(config))


@cache
def dataset_store() -> DatasetStore:
    blobs = get_clients().blob_service
    return DatasetStore(
        blobs.get_container_client(BlobContainers.DATASETS),
        blobs.get_container_client(BlobContainers.LOCKS),
    )


def dataset_runners() -> dict[SourceKind, QueryRunner]:
    """events sources always; log_analytics sources once LOG_ANALYTICS_WORKSPACE_ID is set (without it
    the refresh service reports them failed, "not configured")."""
    s = get_settings()
    clock = app_clock()
    runners: dict[SourceKind, QueryRunner] = {
        "events": EventsRunner(
            get_clients().cosmos_container(CosmosContainers.EVENTS.name), _tenant_id(s), clock
        )
    }
    workspace = s.log_analytics_workspace
    if workspace is not None:
        # azure-core's transport (requests) does not read SSL_CERT_FILE, which the rest of the app's
        # HTTP honours (make run points it at the local CA for the simulator over TLS): pass it on.
        client = build_logs_client(
            s.log_analytics_query_endpoint,
            token_provider(),
            os.environ.get("SSL_CERT_FILE") or None,
            connection_timeout=s.http_connect_timeout_seconds,
        )
        runners["log_analytics"] = LogAnalyticsRunner(
            client, workspace, s.log_analytics_server_timeout_seconds, clock
        )
    return runners


@cache
def refresh_service() -> RefreshService:
    return RefreshService(dataset_sources().current, dataset_store(), dataset_runners(), app_clock())


@cache
def refresh_rate_limit() -> CallerRateLimit:
    table = get_clients().table(Tables.REFRESH_RATE_LIMITS)
    return CallerRateLimit(table, app_clock(), get_settings().datasets_refresh_per_minute)


@cache
def datasets_api() -> DatasetsApi:
    return DatasetsApi(
        api_guard(),
        dataset_sources().current,
        dataset_store(),
        lambda source_id: refresh_service().refresh(source_id),
        refresh_rate_limit(),
    )


# -- governance API (issue 18) ------------------------------------------------------------------------


@cache
def governance_api() -> GovernanceApi:
    clients = get_clients()
    return GovernanceApi(
        api_guard(),
        governance_service(),
        governance_store(),
        governance_activities(),
        CosmosObjectAuditTrail(clients.cosmos_container(CosmosContainers.AUDIT.name)),
        clients.queue(Queues.GOVERNANCE_DISCOVERY),
        audit_log(),
        continuation_signer(),
        _tenant_id(get_settings()),
        app_clock(),
    )


def governance_api_status() -> GovernanceStatus:
    """GET /api/status's governance block: the mode from the settings, the activities from the store
    (no GovernanceService built, so the status never needs Graph credentials)."""
    s = get_settings()
    return governance_status(s.governance_update_mode, governance_activities(), _tenant_id(s))


class StorageQueueSender:
    """pipeline.QueueSender over a storage queue, encoded as the Functions host reads it."""

    def __init__(self, queue_name: str) -> None:
        self._queue_name = queue_name

    def send(self, text: str) -> None:
        get_clients().queue(self._queue_name).send_message(text)


def governance_publisher() -> FindingPublisher:
    """Findings opened by an evaluation become events, alerts and notifications."""
    return governance_finding_alerts()


@cache
def governance_pipeline() -> GovernancePipeline:
    return GovernancePipeline(
        tenant_id(),
        governance_discovery(),
        governance_service(),
        governance_activities(),
        StorageQueueSender(Queues.GOVERNANCE_EVALUATE),
        StorageQueueSender(Queues.GOVERNANCE_UPDATE),
        app_clock(),
        publisher=governance_publisher(),
    )


def api_resource(kind: type[Resource]) -> Resource:
    """The one instance of an API resource class (shared.api.catalog.API_RESOURCES)."""
    factories: dict[type[Resource], Callable[[], Resource]] = {
        OperationsApi: operations_api,
        EventsApi: events_api,
        AlertsApi: alerts_api,
        AuditApi: audit_api,
        RulesApi: rules_api,
        StatusApi: status_api,
        QueuesApi: queues_api,
        SearchesApi: searches_api,
        ObjectsApi: objects_api,
        GovernanceApi: governance_api,
        DatasetsApi: datasets_api,
    }
    return factories[kind]()


@cache
def cors_policy() -> CorsPolicy:
    return CorsPolicy(_csv(get_settings().api_cors_origins))


@cache
def audit_log() -> AuditLog:
    container = get_clients().cosmos_container(CosmosContainers.AUDIT.name)
    return AuditLog(container, _tenant_id(get_settings()), app_clock())


def reset_runtime() -> None:
    """Forget every built service (tests switch settings between runs)."""
    reset_rate_limiters()
    for factory in (
        app_clock,
        endpoints,
        token_provider,
        api_client,
        watermark_store,
        raw_archive,
        poller,
        ingest_service,
        drift_config,
        probe_service,
        pipeline_trigger_service,
        rule_source,
        alert_channels,
        alert_store,
        alert_service,
        source_health_check,
        webhook_client,
        notification_service,
        api_guard,
        continuation_signer,
        events_api,
        alerts_api,
        audit_api,
        operations_api,
        audit_log,
        cors_policy,
        rules_api,
        status_api,
        event_store,
        queues_api,
        searches_api,
        dataset_sources,
        dataset_store,
        refresh_service,
        refresh_rate_limit,
        datasets_api,
        objects_api,
        governance_validators,
        governance_store,
        governance_activities,
        governance_service,
        governance_discovery,
        governance_finding_alerts,
        governance_api,
        governance_pipeline,
    ):
        factory.cache_clear()
