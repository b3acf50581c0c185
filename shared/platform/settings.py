"""Every app setting in one model, and `get_settings()`, the process-wide instance.

Values come from the process environment (Functions app settings in Azure) and, for local runs, from
`local.settings.json` `Values` (shared.platform.local_settings). The environment wins, as it does under
`func start`. A value that is still an unresolved Key Vault reference counts as unset and is reported by
name, with the secrets the configuration needs but lacks (shared.platform.setting_issues).

Longer than 400 lines on purpose: one model holds all the app's settings (about 80 fields, each with the
name Azure spells it by), so that there is one place to add a setting and one to read them.
"""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, model_validator
from pydantic.functional_validators import ModelWrapValidatorHandler
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.platform.local_settings import (
    LOCAL_SETTINGS_ENV,
    LocalSettingsJsonSource,
    local_settings_path,
    read_local_settings_values,
)
from shared.platform.setting_issues import (
    SettingIssue,
    configuration_issues,
    is_key_vault_reference,
    key_vault_secret_name,
)

# Re-exported: the settings' callers and tests import them from here.
__all__ = [
    "LOCAL_SETTINGS_ENV",
    "NOT_DEPLOYED",
    "AppSettings",
    "SettingIssue",
    "get_settings",
    "local_settings_path",
    "read_local_settings_values",
    "setting_names",
]

logger = logging.getLogger(__name__)


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_API_GUID_URI = re.compile(rf"api://({_GUID.pattern})")
# The Log Analytics query API of each cloud (M365_CLOUD): GCC High and DoD tenants use Azure Government.
_LOG_ANALYTICS_ENDPOINTS = {
    "global": "https://api.loganalytics.io/v1",
    "usgov": "https://api.loganalytics.us/v1",
    "dod": "https://api.loganalytics.us/v1",
    "china": "https://api.loganalytics.azure.cn/v1",
}


class AppSettings(BaseSettings):
    """App settings. Field aliases are the exact names used in Azure app settings."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # Storage: a connection string, or an identity-based connection.
    storage_connection_string: SecretStr | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage")
    )
    storage_account_name: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__accountName")
    )
    storage_blob_service_uri: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__blobServiceUri")
    )
    storage_queue_service_uri: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__queueServiceUri")
    )
    storage_table_service_uri: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__tableServiceUri")
    )
    storage_client_id: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__clientId")
    )
    storage_credential: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__credential")
    )

    # Cosmos DB: endpoint plus key locally, endpoint plus managed identity in Azure.
    cosmos_endpoint: str | None = Field(default=None, validation_alias=_alias("COSMOS_ENDPOINT"))
    cosmos_key: SecretStr | None = Field(default=None, validation_alias=_alias("COSMOS_KEY"))
    cosmos_client_id: str | None = Field(default=None, validation_alias=_alias("COSMOS_CLIENT_ID"))
    cosmos_database: str = Field(default="aoc", validation_alias=_alias("COSMOS_DATABASE"))
    cosmos_ca_cert_path: str | None = Field(default=None, validation_alias=_alias("COSMOS_CA_CERT_PATH"))

    # Must match host.json extensions.queues.messageEncoding, so that what the app sends through
    # the SDK reads the same as what the host's output bindings send.
    queue_message_encoding: Literal["base64", "none"] = Field(
        default="base64", validation_alias=_alias("QUEUE_MESSAGE_ENCODING")
    )

    http_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, validation_alias=_alias("HTTP_CONNECT_TIMEOUT_SECONDS")
    )
    http_read_timeout_seconds: float = Field(
        default=30.0, gt=0, validation_alias=_alias("HTTP_READ_TIMEOUT_SECONDS")
    )
    health_timeout_seconds: float = Field(
        default=5.0, gt=0, validation_alias=_alias("HEALTH_TIMEOUT_SECONDS")
    )

    # Microsoft 365 tenant and authentication.
    tenant_id: str | None = Field(default=None, validation_alias=_alias("M365_TENANT_ID"))
    auth_mode: Literal["msal", "identity", "static"] = Field(
        default="identity", validation_alias=_alias("M365_AUTH_MODE")
    )
    client_id: str | None = Field(default=None, validation_alias=_alias("M365_CLIENT_ID"))
    client_secret: SecretStr | None = Field(default=None, validation_alias=_alias("M365_CLIENT_SECRET"))
    certificate_pem: SecretStr | None = Field(default=None, validation_alias=_alias("M365_CERTIFICATE_PEM"))
    certificate_thumbprint: str | None = Field(
        default=None, validation_alias=_alias("M365_CERTIFICATE_THUMBPRINT")
    )
    static_token: SecretStr | None = Field(default=None, validation_alias=_alias("M365_STATIC_TOKEN"))
    managed_identity_client_id: str | None = Field(default=None, validation_alias=_alias("AZURE_CLIENT_ID"))
    cloud: Literal["global", "usgov", "dod", "china"] = Field(
        default="global", validation_alias=_alias("M365_CLOUD")
    )
    authority_host: str | None = Field(default=None, validation_alias=_alias("M365_AUTHORITY_HOST"))
    graph_base_url: str | None = Field(default=None, validation_alias=_alias("GRAPH_BASE_URL"))
    management_base_url: str | None = Field(default=None, validation_alias=_alias("MANAGEMENT_BASE_URL"))

    # Sources and polling.
    source_entra_audit: bool = Field(default=True, validation_alias=_alias("SOURCE_ENTRA_AUDIT"))
    source_entra_signin: bool = Field(default=False, validation_alias=_alias("SOURCE_ENTRA_SIGNIN"))
    source_intune_audit: bool = Field(default=True, validation_alias=_alias("SOURCE_INTUNE_AUDIT"))
    source_o365_management: bool = Field(default=True, validation_alias=_alias("SOURCE_O365_MANAGEMENT"))
    management_content_types: str = Field(
        default="Audit.AzureActiveDirectory,Audit.Exchange,Audit.SharePoint,Audit.General",
        validation_alias=_alias("MANAGEMENT_CONTENT_TYPES"),
    )
    management_include_dlp: bool = Field(default=False, validation_alias=_alias("MANAGEMENT_INCLUDE_DLP"))
    poll_schedule: str = Field(default="0 */5 * * * *", validation_alias=_alias("POLL_SCHEDULE"))
    poll_interval_seconds: float = Field(default=300, gt=0, validation_alias=_alias("POLL_INTERVAL_SECONDS"))
    graph_overlap_seconds: float = Field(default=900, ge=0, validation_alias=_alias("GRAPH_OVERLAP_SECONDS"))
    management_overlap_seconds: float = Field(
        default=86400, ge=0, validation_alias=_alias("MANAGEMENT_OVERLAP_SECONDS")
    )
    initial_lookback_seconds: float = Field(
        default=86400, gt=0, validation_alias=_alias("INITIAL_LOOKBACK_SECONDS")
    )
    poll_time_budget_seconds: float = Field(
        default=540, gt=0, validation_alias=_alias("POLL_TIME_BUDGET_SECONDS")
    )

    # Storage of events.
    event_retention_days: int = Field(default=365, ge=1, validation_alias=_alias("EVENT_RETENTION_DAYS"))
    keep_raw_in_event: bool = Field(default=False, validation_alias=_alias("KEEP_RAW_IN_EVENT"))
    cosmos_write_concurrency: int = Field(
        default=16, ge=1, le=128, validation_alias=_alias("COSMOS_WRITE_CONCURRENCY")
    )
    enrichment_enabled: bool = Field(default=True, validation_alias=_alias("ENRICHMENT_ENABLED"))
    enrichment_cache_ttl_seconds: float = Field(
        default=86400, gt=0, validation_alias=_alias("ENRICHMENT_CACHE_TTL_SECONDS")
    )

    # Change probe and Azure DevOps backup pipeline.
    probe_enabled: bool = Field(default=True, validation_alias=_alias("PROBE_ENABLED"))
    probe_quiet_window_minutes: float = Field(
        default=15, gt=0, validation_alias=_alias("PROBE_QUIET_WINDOW_MINUTES")
    )
    probe_cooldown_minutes: float = Field(default=30, ge=0, validation_alias=_alias("PROBE_COOLDOWN_MINUTES"))
    # How late an audit record may become visible after its change. A burst's trigger waits this long
    # past the quiet window, and the Graph windows reach back at least this far (graph_window_overlap).
    probe_audit_latency_minutes: float = Field(
        default=30, ge=0, le=1440, validation_alias=_alias("PROBE_AUDIT_LATENCY_MINUTES")
    )
    probe_clock_skew_seconds: float = Field(
        default=300, ge=0, le=86400, validation_alias=_alias("PROBE_CLOCK_SKEW_SECONDS")
    )
    drift_file: str | None = Field(default=None, validation_alias=_alias("DRIFT_FILE"))
    devops_base_url: str = Field(default="https://dev.azure.com", validation_alias=_alias("DEVOPS_BASE_URL"))
    # token: an Entra token of the app's managed identity (AZURE_CLIENT_ID; locally, without one, your
    # developer sign-in), whatever M365_AUTH_MODE is. pat: Basic with DEVOPS_PAT.
    devops_auth_mode: Literal["pat", "token"] = Field(
        default="token", validation_alias=_alias("DEVOPS_AUTH_MODE")
    )
    devops_pat: SecretStr | None = Field(default=None, validation_alias=_alias("DEVOPS_PAT"))
    devops_organization: str | None = Field(default=None, validation_alias=_alias("DEVOPS_ORGANIZATION"))
    devops_project: str | None = Field(default=None, validation_alias=_alias("DEVOPS_PROJECT"))
    devops_pipeline_id: str | None = Field(default=None, validation_alias=_alias("DEVOPS_PIPELINE_ID"))
    devops_token_scope: str = Field(
        default="499b84ac-1321-427f-aa17-267ca6975798/.default", validation_alias=_alias("DEVOPS_TOKEN_SCOPE")
    )

    # Alerting: rules, suppression, notification channels.
    alert_dedupe_minutes: float = Field(default=15, ge=0, validation_alias=_alias("ALERT_DEDUPE_MINUTES"))
    # An open or acknowledged alert absorbs new matches of its rule and group for this long from its first
    # match (a rule's group_minutes overrides it; a rule's suppress_minutes keeps the sliding
    # ALERT_DEDUPE_MINUTES-style suppression). 0 turns grouping off: every rule suppresses by
    # ALERT_DEDUPE_MINUTES.
    alert_group_hours: float = Field(default=5, ge=0, le=168, validation_alias=_alias("ALERT_GROUP_HOURS"))
    alert_repeat_minutes: float = Field(default=240, ge=0, validation_alias=_alias("ALERT_REPEAT_MINUTES"))
    alert_channels: SecretStr | None = Field(default=None, validation_alias=_alias("ALERT_CHANNELS"))
    alert_link_base_url: str | None = Field(default=None, validation_alias=_alias("ALERT_LINK_BASE_URL"))
    alert_business_hours: str = Field(default="08:00-18:00", validation_alias=_alias("ALERT_BUSINESS_HOURS"))
    alert_business_days: str = Field(default="Mon-Fri", validation_alias=_alias("ALERT_BUSINESS_DAYS"))
    alert_timezone: str = Field(default="UTC", validation_alias=_alias("ALERT_TIMEZONE"))
    alert_internal_domains: str = Field(default="", validation_alias=_alias("ALERT_INTERNAL_DOMAINS"))
    alert_privileged_accounts: str = Field(default="", validation_alias=_alias("ALERT_PRIVILEGED_ACCOUNTS"))
    alert_rules_cache_seconds: float = Field(
        default=60, ge=0, validation_alias=_alias("ALERT_RULES_CACHE_SECONDS")
    )

    # Service principal governance (issue 18, shared.governance.service): ReportOnly records the notes
    # PATCH it would send (read permissions suffice); Update sends it (needs a write permission).
    governance_update_mode: Literal["ReportOnly", "Update"] = Field(
        default="ReportOnly", validation_alias=_alias("GOVERNANCE_UPDATE_MODE")
    )
    # The discovery timer (the binding reads %GOVERNANCE_DISCOVERY_SCHEDULE%: 6-field NCRONTAB), and how
    # often a discovery lists every service principal instead of following delta (0: never), so that a
    # credential nearing expiry or an owner disabled is found on an object that did not change.
    governance_discovery_schedule: str = Field(
        default="0 */30 * * * *", validation_alias=_alias("GOVERNANCE_DISCOVERY_SCHEDULE")
    )
    governance_full_sweep_hours: int = Field(
        default=24, ge=0, le=24 * 30, validation_alias=_alias("GOVERNANCE_FULL_SWEEP_HOURS")
    )

    # Activity datasets (issue 19, shared.datasets): Log Analytics / Sentinel queries and this app's own
    # events exported as TSV. Without LOG_ANALYTICS_WORKSPACE_ID (the workspace's GUID, its "Workspace
    # ID"), log_analytics sources report failed "not configured" and events sources still work.
    # LOG_ANALYTICS_ENDPOINT: the query API's base URL; unset, the cloud's (log_analytics_query_endpoint).
    log_analytics_workspace_id: str | None = Field(
        default=None, validation_alias=_alias("LOG_ANALYTICS_WORKSPACE_ID")
    )
    log_analytics_endpoint: str | None = Field(
        default=None, validation_alias=_alias("LOG_ANALYTICS_ENDPOINT")
    )
    log_analytics_server_timeout_seconds: int = Field(
        default=180, ge=1, le=600, validation_alias=_alias("LOG_ANALYTICS_SERVER_TIMEOUT_SECONDS")
    )
    # POST /api/refresh calls per caller (object id) per minute, counted in the RefreshRateLimits table.
    datasets_refresh_per_minute: int = Field(
        default=6, ge=1, le=600, validation_alias=_alias("DATASETS_REFRESH_PER_MINUTE")
    )
    # The refresh_datasets timer's schedule (6-field NCRONTAB); the timer is off unless
    # AzureWebJobs.refresh_datasets.Disabled is false.
    datasets_refresh_schedule: str = Field(
        default="0 */5 * * * *", validation_alias=_alias("DATASETS_REFRESH_SCHEDULE")
    )

    # HTTP API: authentication, paging and privacy.
    api_auth_mode: Literal["keys", "entra", "swa"] = Field(
        default="keys", validation_alias=_alias("API_AUTH_MODE")
    )
    # Entra mode: API_AUDIENCE is the API app registration's Application ID URI (api://...), the `aud`
    # of v1.0 tokens asked for by that URI; API_CLIENT_ID its Application (client) ID, the `aud` of every
    # v2.0 token. API_CLIENT_ID may be left out when API_AUDIENCE is the client id or api://<client id>.
    api_audience: str | None = Field(default=None, validation_alias=_alias("API_AUDIENCE"))
    api_client_id: str | None = Field(default=None, validation_alias=_alias("API_CLIENT_ID"))
    # SWA mode believes x-ms-client-principal, so it needs App Service authentication in front of the
    # app (the platform then sets the header itself, and sets WEBSITE_AUTH_ENABLED=True), or, for local
    # development only, the flag whose name says what it does.
    website_auth_enabled: str | None = Field(default=None, validation_alias=_alias("WEBSITE_AUTH_ENABLED"))
    unsafe_trust_client_principal_header: bool = Field(
        default=False, validation_alias=_alias("AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER")
    )
    api_allowed_tenants: str = Field(default="", validation_alias=_alias("API_ALLOWED_TENANTS"))
    api_key_roles: str = Field(default="AOC.Admin,AOC.Privacy", validation_alias=_alias("API_KEY_ROLES"))
    api_continuation_secret: SecretStr | None = Field(
        default=None, validation_alias=_alias("API_CONTINUATION_SECRET")
    )
    api_sensitive_services: str = Field(default="", validation_alias=_alias("API_SENSITIVE_SERVICES"))
    api_sensitive_operations: str = Field(default="", validation_alias=_alias("API_SENSITIVE_OPERATIONS"))
    api_cors_origins: str = Field(default="", validation_alias=_alias("API_CORS_ORIGINS"))
    api_export_max_events: int = Field(
        default=50_000, ge=1, le=1_000_000, validation_alias=_alias("API_EXPORT_MAX_EVENTS")
    )
    api_bulk_tag_max_events: int = Field(
        default=1_000, ge=1, le=100_000, validation_alias=_alias("API_BULK_TAG_MAX_EVENTS")
    )

    # The admin console's sign-in, for the /config.json the local host serves next to the console (in
    # Azure the deploy writes that file into the Static Web App, and the Function App reads none of them).
    # CONSOLE_CLIENT_ID: the SPA app registration's client id; CONSOLE_AUTHORITY: the authority MSAL.js
    # signs in with, https://<host>/<tenant>/v2.0; CONSOLE_SCOPES: space- or comma-separated scopes,
    # by default API_AUDIENCE + "/access_as_user".
    console_client_id: str | None = Field(default=None, validation_alias=_alias("CONSOLE_CLIENT_ID"))
    console_authority: str | None = Field(default=None, validation_alias=_alias("CONSOLE_AUTHORITY"))
    console_scopes: str = Field(default="", validation_alias=_alias("CONSOLE_SCOPES"))

    # The commit this deployment was built from, answered by GET /api/version (null when unset).
    commit: str | None = Field(default=None, max_length=100, validation_alias=_alias("AOC_COMMIT"))

    # Time: an accelerated clock for demos and end-to-end tests; unset in Azure.
    clock_epoch: str | None = Field(default=None, validation_alias=_alias("AOC_CLOCK_EPOCH"))
    clock_speed: float = Field(default=1.0, gt=0, validation_alias=_alias("AOC_CLOCK_SPEED"))
    clock_started_at: float | None = Field(default=None, validation_alias=_alias("AOC_CLOCK_STARTED_AT"))

    @property
    def platform_auth_enabled(self) -> bool:
        """App Service authentication is on: the platform sets WEBSITE_AUTH_ENABLED to "True"."""
        return (self.website_auth_enabled or "").strip().lower() == "true"

    @property
    def api_token_audience(self) -> tuple[str, str | None]:
        """(client id, App ID URI or None) of the API's app registration, for Entra mode."""
        audience = (self.api_audience or "").strip() or None
        client_id = (self.api_client_id or "").strip().lower() or None
        if audience and _GUID.fullmatch(audience):
            return client_id or audience.lower(), None
        if client_id is None and audience and (match := _API_GUID_URI.fullmatch(audience)):
            client_id = match.group(1).lower()
        if client_id is None:
            raise ValueError(
                "API_AUTH_MODE=entra needs API_CLIENT_ID, the API app registration's Application (client) "
                "ID, which v2.0 tokens carry as their audience (or an API_AUDIENCE of api://<client id>)"
            )
        return client_id, audience

    @model_validator(mode="after")
    def _api_auth_is_sound(self) -> AppSettings:
        if self.api_auth_mode == "swa" and not (
            self.platform_auth_enabled or self.unsafe_trust_client_principal_header
        ):
            raise ValueError(
                "API_AUTH_MODE=swa trusts the x-ms-client-principal header, which anyone can send unless "
                "App Service authentication sits in front of the app: turn App Service authentication on "
                "(the platform then sets WEBSITE_AUTH_ENABLED=True), or, for local development only, set "
                "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER=1. For a deployed API use API_AUTH_MODE=entra."
            )
        if self.api_client_id and not _GUID.fullmatch(self.api_client_id.strip()):
            raise ValueError("API_CLIENT_ID must be the Application (client) ID, a GUID")
        if self.api_auth_mode == "entra":
            audience = (self.api_audience or "").strip()
            client_id = (self.api_client_id or "").strip().lower()
            if _GUID.fullmatch(audience) and client_id and audience.lower() != client_id:
                raise ValueError("API_AUDIENCE is a client id other than API_CLIENT_ID")
            self.api_token_audience  # noqa: B018 - raises when no client id can be known
        return self

    @model_validator(mode="after")
    def _console_sign_in_is_sound(self) -> AppSettings:
        if self.console_client_id and not _GUID.fullmatch(self.console_client_id.strip()):
            raise ValueError("CONSOLE_CLIENT_ID must be the console's Application (client) ID, a GUID")
        if self.console_authority:
            parts = urlsplit(self.console_authority.strip())
            if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
                raise ValueError(
                    "CONSOLE_AUTHORITY must be an https URL without query or fragment, such as "
                    "https://login.microsoftonline.com/<tenant id>/v2.0 (MSAL.js rejects http authorities)"
                )
        return self

    @model_validator(mode="after")
    def _log_analytics_is_sound(self) -> AppSettings:
        workspace = (self.log_analytics_workspace_id or "").strip()
        if workspace and not _GUID.fullmatch(workspace):
            raise ValueError(
                "LOG_ANALYTICS_WORKSPACE_ID must be the workspace's GUID (its Workspace ID), not its name "
                "or resource id"
            )
        endpoint = (self.log_analytics_endpoint or "").strip()
        if endpoint:
            parts = urlsplit(endpoint)
            loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
            if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
                raise ValueError(
                    "LOG_ANALYTICS_ENDPOINT must be an absolute URL such as https://api.loganalytics.io/v1"
                )
            if parts.scheme != "https" and not loopback:
                raise ValueError("LOG_ANALYTICS_ENDPOINT must use https (http only for a local simulator)")
        return self

    @property
    def log_analytics_workspace(self) -> str | None:
        """LOG_ANALYTICS_WORKSPACE_ID, or None when it is unset or blank."""
        return (self.log_analytics_workspace_id or "").strip().lower() or None

    @property
    def log_analytics_query_endpoint(self) -> str:
        """LOG_ANALYTICS_ENDPOINT, or the query API of M365_CLOUD's Azure cloud."""
        explicit = (self.log_analytics_endpoint or "").strip().rstrip("/")
        return explicit or _LOG_ANALYTICS_ENDPOINTS[self.cloud]

    @property
    def console_scope_list(self) -> list[str]:
        """CONSOLE_SCOPES, or the API's access_as_user scope when API_AUDIENCE is set."""
        scopes = [scope for scope in re.split(r"[\s,]+", self.console_scopes) if scope]
        audience = (self.api_audience or "").strip().rstrip("/")
        return scopes or ([f"{audience}/access_as_user"] if audience else [])

    @staticmethod
    def _csv(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    @property
    def graph_window_overlap_seconds(self) -> float:
        """GRAPH_OVERLAP_SECONDS, raised to the probe's audit latency so the probe sees late records."""
        if not self.probe_enabled:
            return self.graph_overlap_seconds
        return max(self.graph_overlap_seconds, self.probe_audit_latency_minutes * 60)

    @property
    def internal_domains(self) -> list[str]:
        return self._csv(self.alert_internal_domains)

    @property
    def privileged_accounts(self) -> list[str]:
        return self._csv(self.alert_privileged_accounts)

    @property
    def enabled_content_types(self) -> list[str]:
        types = [t.strip() for t in self.management_content_types.split(",") if t.strip()]
        if self.management_include_dlp and "DLP.All" not in types:
            types.append("DLP.All")
        return types

    @model_validator(mode="after")
    def _storage_is_configured_once(self) -> AppSettings:
        identity_based = any(
            (
                self.storage_account_name,
                self.storage_blob_service_uri,
                self.storage_queue_service_uri,
                self.storage_table_service_uri,
            )
        )
        if self.storage_connection_string and identity_based:
            raise ValueError(
                "set either AzureWebJobsStorage (a connection string) or the identity-based "
                "AzureWebJobsStorage__* settings, not both"
            )
        return self

    # Setting name -> the secret named by its unresolved Key Vault reference (None if none is named).
    _unresolved_references: dict[str, str | None] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _drop_unresolved_key_vault_references(
        cls, data: Any, handler: ModelWrapValidatorHandler[AppSettings]
    ) -> AppSettings:
        """Treat a value that is still `@Microsoft.KeyVault(...)` as unset, and remember which it was."""
        if not isinstance(data, dict):
            return handler(data)
        unresolved: dict[str, str | None] = {}
        kept: dict[str, Any] = {}
        for key, value in data.items():
            if is_key_vault_reference(value):
                unresolved[_setting_name_for(key)] = key_vault_secret_name(value)
            else:
                kept[key] = value
        settings = handler(kept)
        settings._unresolved_references = unresolved
        return settings

    @property
    def unresolved_key_vault_references(self) -> dict[str, str | None]:
        """Settings that arrived as an unresolved Key Vault reference, with the secret each names."""
        return dict(self._unresolved_references)

    def configuration_issues(self) -> list[SettingIssue]:
        """Unresolved Key Vault references, and secrets this configuration needs that are not set."""
        return configuration_issues(self)

    @property
    def uses_storage_identity(self) -> bool:
        return not self.storage_connection_string

    def storage_service_uri(self, service: Literal["blob", "queue", "table"]) -> str:
        """The service endpoint for an identity-based connection."""
        explicit = {
            "blob": self.storage_blob_service_uri,
            "queue": self.storage_queue_service_uri,
            "table": self.storage_table_service_uri,
        }[service]
        if explicit:
            return explicit
        if self.storage_account_name:
            return f"https://{self.storage_account_name}.{service}.core.windows.net"
        raise ValueError(
            "no storage connection: set AzureWebJobsStorage, or AzureWebJobsStorage__accountName, or "
            f"AzureWebJobsStorage__{service}ServiceUri"
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            LocalSettingsJsonSource(settings_cls, local_settings_path()),
        )


# Settings the Azure deployment (infra/) deliberately leaves out, and why. Every other setting appears in
# the Function App's app settings; a test keeps the two in step.
_CONSOLE_SETTING = "the console's, not the API's: the deploy writes it into the Static Web App's config.json"
NOT_DEPLOYED: dict[str, str] = {
    "AzureWebJobsStorage": "a connection string carries a key; Azure uses the identity-based __ settings",
    "AzureWebJobsStorage__accountName": "the explicit blob, queue and table service URIs are deployed",
    "COSMOS_KEY": "Cosmos DB has local authentication disabled; the managed identity is used",
    "COSMOS_CA_CERT_PATH": "only for the local cosmosdb-server certificate",
    "M365_STATIC_TOKEN": "development only",
    "M365_AUTHORITY_HOST": "the cloud table supplies it; overrides are for the local simulator",
    "GRAPH_BASE_URL": "the cloud table supplies it; overrides are for the local simulator",
    "MANAGEMENT_BASE_URL": "the cloud table supplies it; overrides are for the local simulator",
    "AOC_CLOCK_EPOCH": "the accelerated clock is for tests and demos",
    "AOC_CLOCK_SPEED": "the accelerated clock is for tests and demos",
    "AOC_CLOCK_STARTED_AT": "the accelerated clock is for tests and demos",
    "WEBSITE_AUTH_ENABLED": "set by the platform when App Service authentication is on, never by us",
    "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER": "local development only: SWA mode without a platform",
    "CONSOLE_CLIENT_ID": _CONSOLE_SETTING,
    "CONSOLE_AUTHORITY": _CONSOLE_SETTING,
    "CONSOLE_SCOPES": _CONSOLE_SETTING,
}


def setting_names() -> list[str]:
    """The app-setting name of every field, as Azure spells it."""
    names = []
    for field in AppSettings.model_fields.values():
        alias = field.validation_alias
        first = alias.choices[0] if isinstance(alias, AliasChoices) else alias
        names.append(first if isinstance(first, str) else str(first))
    return names


@cache
def _setting_names_by_key() -> dict[str, str]:
    """Every alias and field name, lower-cased, to the field's app-setting name."""
    found = {}
    for (field_name, field), setting in zip(AppSettings.model_fields.items(), setting_names(), strict=True):
        found[field_name.lower()] = setting
        alias = field.validation_alias
        for choice in alias.choices if isinstance(alias, AliasChoices) else [alias]:
            if isinstance(choice, str):
                found[choice.lower()] = setting
    return found


def _setting_name_for(key: str) -> str:
    return _setting_names_by_key().get(str(key).lower(), str(key))


@cache
def get_settings() -> AppSettings:
    """The process-wide settings, read once; configuration problems are logged by name, once."""
    settings = AppSettings()
    for issue in settings.configuration_issues():
        logger.warning("setting %s (%s): %s", issue.setting, issue.problem, issue.detail)
    return settings
