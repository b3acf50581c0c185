"""Every app setting in one model.

Values come from the process environment (Functions app settings in Azure) and, for local runs, from
`local.settings.json` `Values`. The environment wins, as it does under `func start`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

LOCAL_SETTINGS_ENV = "AOC_LOCAL_SETTINGS_FILE"


def local_settings_path() -> Path:
    return Path(os.environ.get(LOCAL_SETTINGS_ENV) or "local.settings.json")


def read_local_settings_values(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json file, as strings; {} when the file does not exist."""
    if not path.is_file():
        return {}
    document = json.loads(path.read_text(encoding="utf-8") or "{}")
    values = document.get("Values") or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: 'Values' must be an object")
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


class LocalSettingsJsonSource(EnvSettingsSource):
    """Reads `local.settings.json` Values with the same alias and case rules as the environment."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self._path = path
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        values = read_local_settings_values(self._path)
        return parse_env_vars(values, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


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
    drift_file: str | None = Field(default=None, validation_alias=_alias("DRIFT_FILE"))
    devops_base_url: str = Field(default="https://dev.azure.com", validation_alias=_alias("DEVOPS_BASE_URL"))
    devops_auth_mode: Literal["pat", "token"] = Field(
        default="pat", validation_alias=_alias("DEVOPS_AUTH_MODE")
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

    # HTTP API: authentication, paging and privacy.
    api_auth_mode: Literal["keys", "entra", "swa"] = Field(
        default="keys", validation_alias=_alias("API_AUTH_MODE")
    )
    api_audience: str | None = Field(default=None, validation_alias=_alias("API_AUDIENCE"))
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

    # Time: an accelerated clock for demos and end-to-end tests; unset in Azure.
    clock_epoch: str | None = Field(default=None, validation_alias=_alias("AOC_CLOCK_EPOCH"))
    clock_speed: float = Field(default=1.0, gt=0, validation_alias=_alias("AOC_CLOCK_SPEED"))
    clock_started_at: float | None = Field(default=None, validation_alias=_alias("AOC_CLOCK_STARTED_AT"))

    @staticmethod
    def _csv(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

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
}


def setting_names() -> list[str]:
    """The app-setting name of every field, as Azure spells it."""
    names = []
    for field in AppSettings.model_fields.values():
        alias = field.validation_alias
        names.append(alias.choices[0] if isinstance(alias, AliasChoices) else str(alias))
    return names


@cache
def get_settings() -> AppSettings:
    """The process-wide settings, read once."""
    return AppSettings()
