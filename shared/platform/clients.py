"""SDK clients, created once per process on first use and reused across invocations."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from azure.core.credentials import TokenCredential
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy, documents
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from shared.platform.settings import AppSettings, get_settings


def _managed_identity_credential(client_id: str | None) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential()


class AzureClients:
    """Lazily built clients for Storage and Cosmos DB. Building one touches no network."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._queue_clients: dict[str, QueueClient] = {}

    def _transport_options(self) -> dict[str, Any]:
        return {
            "connection_timeout": self.settings.http_connect_timeout_seconds,
            "read_timeout": self.settings.http_read_timeout_seconds,
        }

    @cached_property
    def storage_credential(self) -> TokenCredential:
        return _managed_identity_credential(self.settings.storage_client_id)

    @cached_property
    def table_service(self) -> TableServiceClient:
        s = self.settings
        if s.storage_connection_string:
            return TableServiceClient.from_connection_string(
                s.storage_connection_string.get_secret_value(), **self._transport_options()
            )
        return TableServiceClient(
            endpoint=s.storage_service_uri("table"),
            credential=self.storage_credential,
            **self._transport_options(),
        )

    @cached_property
    def queue_service(self) -> QueueServiceClient:
        s = self.settings
        if s.storage_connection_string:
            return QueueServiceClient.from_connection_string(
                s.storage_connection_string.get_secret_value(), **self._transport_options()
            )
        return QueueServiceClient(
            account_url=s.storage_service_uri("queue"),
            credential=self.storage_credential,
            **self._transport_options(),
        )

    @cached_property
    def blob_service(self) -> BlobServiceClient:
        s = self.settings
        if s.storage_connection_string:
            return BlobServiceClient.from_connection_string(
                s.storage_connection_string.get_secret_value(), **self._transport_options()
            )
        return BlobServiceClient(
            account_url=s.storage_service_uri("blob"),
            credential=self.storage_credential,
            **self._transport_options(),
        )

    @cached_property
    def cosmos(self) -> CosmosClient:
        s = self.settings
        if not s.cosmos_endpoint:
            raise ValueError("COSMOS_ENDPOINT is not set")
        options: dict[str, Any] = {
            "connection_timeout": s.http_connect_timeout_seconds,
            "read_timeout": s.http_read_timeout_seconds,
        }
        if s.cosmos_ca_cert_path:
            # Verify TLS against our CA. Without an SSLConfiguration the SDK skips verification
            # for localhost endpoints altogether.
            options["ssl_config"] = documents.SSLConfiguration()
            options["connection_verify"] = s.cosmos_ca_cert_path
        credential: Any = (
            s.cosmos_key.get_secret_value()
            if s.cosmos_key
            else _managed_identity_credential(s.cosmos_client_id)
        )
        return CosmosClient(s.cosmos_endpoint, credential=credential, **options)

    @cached_property
    def cosmos_database(self) -> DatabaseProxy:
        return self.cosmos.get_database_client(self.settings.cosmos_database)

    def cosmos_container(self, name: str) -> ContainerProxy:
        return self.cosmos_database.get_container_client(name)

    def table(self, name: str) -> TableClient:
        return self.table_service.get_table_client(name)

    def blob_container(self, name: str) -> ContainerClient:
        return self.blob_service.get_container_client(name)

    def queue(self, name: str) -> QueueClient:
        """A queue client whose messages read and write the way the Functions host encodes them."""
        with self._lock:
            client = self._queue_clients.get(name)
            if client is None:
                if self.settings.queue_message_encoding == "base64":
                    client = self.queue_service.get_queue_client(
                        name,
                        message_encode_policy=TextBase64EncodePolicy(),
                        message_decode_policy=TextBase64DecodePolicy(),
                    )
                else:
                    client = self.queue_service.get_queue_client(name)
                self._queue_clients[name] = client
            return client


_clients: AzureClients | None = None
_clients_lock = threading.Lock()


def get_clients() -> AzureClients:
    global _clients
    with _clients_lock:
        if _clients is None:
            _clients = AzureClients(get_settings())
        return _clients


def reset_clients() -> None:
    """Forget the process-wide clients and settings (tests switch services between runs)."""
    global _clients
    with _clients_lock:
        _clients = None
    get_settings.cache_clear()
