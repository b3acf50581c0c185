"""Queue clients for a binding's `connection` setting, resolved the way the host resolves them."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from azure.storage.queue import QueueClient, QueueServiceClient

from devtools.host.config import HostConfigError


class QueueClientFactory:
    """One QueueServiceClient per connection setting; queue clients send and receive raw text."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._services: dict[str, QueueServiceClient] = {}
        self._lock = threading.Lock()

    def _service(self, connection: str) -> QueueServiceClient:
        with self._lock:
            service = self._services.get(connection)
            if service is None:
                service = self._build(connection)
                self._services[connection] = service
            return service

    def _build(self, connection: str) -> QueueServiceClient:
        env = self._environ
        options: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 30}
        if env.get(connection):
            return QueueServiceClient.from_connection_string(env[connection], **options)
        uri = env.get(f"{connection}__queueServiceUri")
        account = env.get(f"{connection}__accountName")
        if uri or account:
            from azure.identity import DefaultAzureCredential

            client_id = env.get(f"{connection}__clientId")
            credential = (
                DefaultAzureCredential(managed_identity_client_id=client_id)
                if client_id
                else DefaultAzureCredential()
            )
            return QueueServiceClient(
                account_url=uri or f"https://{account}.queue.core.windows.net",
                credential=credential,
                **options,
            )
        raise HostConfigError(
            f"storage connection '{connection}' is not configured: set {connection} or "
            f"{connection}__queueServiceUri / {connection}__accountName"
        )

    def queue(self, connection: str, queue_name: str) -> QueueClient:
        return self._service(connection).get_queue_client(queue_name)
