"""AzureClients: clients are built lazily, without network, with the host's queue encoding."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

import shared.platform.clients as clients_module
from shared.platform.clients import AzureClients
from shared.platform.settings import LOCAL_SETTINGS_ENV, AppSettings

ACCOUNT_KEY = base64.b64encode(b"not-a-real-account-key-for-tests").decode()
CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={ACCOUNT_KEY};"
    "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:1/devstoreaccount1;"
)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AzureWebJobsStorage",
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__blobServiceUri",
        "AzureWebJobsStorage__queueServiceUri",
        "AzureWebJobsStorage__tableServiceUri",
        "AzureWebJobsStorage__clientId",
        "COSMOS_ENDPOINT",
        "COSMOS_KEY",
        "QUEUE_MESSAGE_ENCODING",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(LOCAL_SETTINGS_ENV, str(tmp_path / "absent.json"))
    monkeypatch.chdir(tmp_path)


class _StubCredential:
    def __init__(self, client_id: str | None) -> None:
        self.client_id = client_id

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token should be requested: building clients touches no network")


@pytest.fixture
def stub_credentials(monkeypatch: pytest.MonkeyPatch) -> list[_StubCredential]:
    made: list[_StubCredential] = []

    def build(client_id: str | None) -> _StubCredential:
        made.append(_StubCredential(client_id))
        return made[-1]

    monkeypatch.setattr(clients_module, "_managed_identity_credential", build)
    return made


class _Sent(Exception):
    def __init__(self, message_text: str) -> None:
        super().__init__(message_text)
        self.message_text = message_text


def _text_sent_by(client: QueueClient, content: str) -> str:
    """What send_message would put on the wire, caught before any request is made."""

    def capture(queue_message: Any, **kwargs: Any) -> Any:
        raise _Sent(queue_message.message_text)

    client._client.queue.send_message = capture
    with pytest.raises(_Sent) as caught:
        client.send_message(content)
    return caught.value.message_text


def _settings(**values: Any) -> AppSettings:
    return AppSettings(**values)


def test_queue_client_from_connection_string(stub_credentials: list[_StubCredential]) -> None:
    clients = AzureClients(_settings(storage_connection_string=CONNECTION_STRING))
    queue = clients.queue("work-items")
    assert isinstance(queue, QueueClient)
    assert queue.queue_name == "work-items"
    assert queue.url.startswith("http://127.0.0.1:1/devstoreaccount1")
    assert queue.account_name == "devstoreaccount1"
    assert stub_credentials == []


def test_queue_clients_are_cached_per_name() -> None:
    clients = AzureClients(_settings(storage_connection_string=CONNECTION_STRING))
    assert clients.queue("a") is clients.queue("a")
    assert clients.queue("a") is not clients.queue("b")
    assert clients.queue_service is clients.queue_service


def test_other_storage_clients_build_without_network() -> None:
    clients = AzureClients(_settings(storage_connection_string=CONNECTION_STRING))
    container = clients.blob_container("raw")
    table = clients.table("watermarks")
    assert container.container_name == "raw"
    assert container.url.startswith("http://127.0.0.1:1/devstoreaccount1")
    assert table.table_name == "watermarks"
    assert table.url.startswith("http://127.0.0.1:1/devstoreaccount1")


def test_transport_timeouts_come_from_settings() -> None:
    settings = _settings(
        storage_connection_string=CONNECTION_STRING,
        http_connect_timeout_seconds=1.5,
        http_read_timeout_seconds=7.0,
    )
    clients = AzureClients(settings)
    assert clients._transport_options() == {"connection_timeout": 1.5, "read_timeout": 7.0}


def test_none_encoding_sends_text_as_is() -> None:
    clients = AzureClients(
        _settings(storage_connection_string=CONNECTION_STRING, queue_message_encoding="none")
    )
    queue = clients.queue("plain")
    assert not isinstance(queue._message_encode_policy, TextBase64EncodePolicy)
    assert not isinstance(queue._message_decode_policy, TextBase64DecodePolicy)
    assert _text_sent_by(queue, '{"a": 1}') == '{"a": 1}'


def test_base64_encoding_is_applied_to_sent_messages() -> None:
    clients = AzureClients(
        _settings(storage_connection_string=CONNECTION_STRING, queue_message_encoding="base64")
    )
    body = json.dumps({"event": "héllo"})
    sent = _text_sent_by(clients.queue("encoded"), body)
    assert sent == base64.b64encode(body.encode("utf-8")).decode("ascii")


def test_base64_policies_are_the_ones_the_sdk_uses() -> None:
    clients = AzureClients(
        _settings(storage_connection_string=CONNECTION_STRING, queue_message_encoding="base64")
    )
    queue = clients.queue("encoded")
    assert isinstance(queue._message_encode_policy, TextBase64EncodePolicy)
    assert isinstance(queue._message_decode_policy, TextBase64DecodePolicy)


def test_identity_based_queue_service_uri(
    monkeypatch: pytest.MonkeyPatch, stub_credentials: list[_StubCredential]
) -> None:
    uri = "https://127.0.0.1:10001/devstoreaccount1"
    monkeypatch.setenv("AzureWebJobsStorage__queueServiceUri", uri)
    monkeypatch.setenv("AzureWebJobsStorage__clientId", "11111111-2222-3333-4444-555555555555")
    settings = AppSettings()
    clients = AzureClients(settings)
    service = clients.queue_service
    assert isinstance(service, QueueServiceClient)
    assert service.url.startswith(uri)
    assert clients.queue("work-items").url.startswith(uri + "/work-items")
    assert [c.client_id for c in stub_credentials] == ["11111111-2222-3333-4444-555555555555"]
    assert service.credential is stub_credentials[0]


def test_identity_based_account_name(
    monkeypatch: pytest.MonkeyPatch, stub_credentials: list[_StubCredential]
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "myaccount")
    clients = AzureClients(AppSettings())
    assert clients.queue_service.url.startswith("https://myaccount.queue.core.windows.net")
    assert clients.blob_service.url.startswith("https://myaccount.blob.core.windows.net")
    assert clients.table_service.url.startswith("https://myaccount.table.core.windows.net")
    # One credential, shared by every storage client.
    assert len(stub_credentials) == 1
    assert stub_credentials[0].client_id is None


def test_identity_without_any_storage_setting_fails_clearly(stub_credentials: list[_StubCredential]) -> None:
    clients = AzureClients(AppSettings())
    with pytest.raises(ValueError, match="no storage connection"):
        _ = clients.queue_service


def test_cosmos_requires_endpoint() -> None:
    clients = AzureClients(_settings(storage_connection_string=CONNECTION_STRING))
    with pytest.raises(ValueError, match="COSMOS_ENDPOINT"):
        _ = clients.cosmos
