"""The composition root: builds each service once per process from settings and shared clients."""

from __future__ import annotations

import threading
from functools import cache

from shared.archive import RawArchive
from shared.auth import TokenProvider, build_token_provider
from shared.clients import get_clients
from shared.clock import Clock, build_clock
from shared.cloud import CloudEndpoints, resolve_endpoints
from shared.enrichment import DirectoryNameResolver
from shared.event_store import EventStore
from shared.http_client import ApiClient
from shared.ingest import IngestService
from shared.poller import Poller
from shared.resources import CosmosContainers, Queues, Tables
from shared.settings import AppSettings, get_settings
from shared.sources.graph import GraphCollector
from shared.sources.handoff import PageHandOff
from shared.sources.management import ManagementCollector
from shared.watermarks import HandedOffContent, WatermarkStore

_lock = threading.Lock()


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


@cache
def watermark_store() -> WatermarkStore:
    return WatermarkStore(get_clients().table(Tables.WATERMARKS))


@cache
def raw_archive() -> RawArchive:
    return RawArchive(get_clients().blob_service)


@cache
def poller() -> Poller:
    s = get_settings()
    clients = get_clients()
    clock = app_clock()
    handoff = PageHandOff(raw_archive(), clients.queue(Queues.INGEST))
    graph_sources = [
        name
        for name, enabled in (
            ("entra_audit", s.source_entra_audit),
            ("entra_signin", s.source_entra_signin),
            ("intune_audit", s.source_intune_audit),
        )
        if enabled
    ]
    cloud = endpoints()
    graph = GraphCollector(
        api_client(),
        cloud.graph_base,
        cloud.graph_scope,
        handoff,
        watermark_store(),
        clock,
        overlap_seconds=s.graph_overlap_seconds,
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
            HandedOffContent(clients.table(Tables.HANDED_OFF_CONTENT)),
            clock,
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
    )


@cache
def ingest_service() -> IngestService:
    s = get_settings()
    clients = get_clients()
    clock = app_clock()
    store = EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        s.cosmos_write_concurrency,
    )
    resolver = None
    if s.enrichment_enabled:
        cloud = endpoints()
        resolver = DirectoryNameResolver(
            api_client(),
            cloud.graph_base,
            cloud.graph_scope,
            clients.table(Tables.DIRECTORY_NAMES),
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


def reset_runtime() -> None:
    """Forget every built service (tests switch settings between runs)."""
    for factory in (
        app_clock,
        endpoints,
        token_provider,
        api_client,
        watermark_store,
        raw_archive,
        poller,
        ingest_service,
    ):
        factory.cache_clear()
