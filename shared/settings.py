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


@cache
def get_settings() -> AppSettings:
    """The process-wide settings, read once."""
    return AppSettings()
