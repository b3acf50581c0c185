"""AppSettings: Azure app-setting names, environment over local.settings.json, storage validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from shared.settings import (
    LOCAL_SETTINGS_ENV,
    AppSettings,
    local_settings_path,
    read_local_settings_values,
)

SETTING_NAMES = (
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__credential",
    "COSMOS_ENDPOINT",
    "COSMOS_KEY",
    "COSMOS_CLIENT_ID",
    "COSMOS_DATABASE",
    "COSMOS_CA_CERT_PATH",
    "QUEUE_MESSAGE_ENCODING",
    "HTTP_CONNECT_TIMEOUT_SECONDS",
    "HTTP_READ_TIMEOUT_SECONDS",
    "HEALTH_TIMEOUT_SECONDS",
)

CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=c2VjcmV0LWtleS1mb3ItdGVzdHM=;QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;"
)
COSMOS_KEY = "super-secret-cosmos-key=="


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated environment: no app settings set, local.settings.json pointed at a tmp path."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    path = tmp_path / "local.settings.json"
    monkeypatch.setenv(LOCAL_SETTINGS_ENV, str(path))
    monkeypatch.chdir(tmp_path)
    return path


def _write_values(path: Path, values: dict[str, object]) -> None:
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")


def test_defaults_without_any_settings(settings_file: Path) -> None:
    settings = AppSettings()
    assert settings.storage_connection_string is None
    assert settings.storage_account_name is None
    assert settings.cosmos_endpoint is None
    assert settings.cosmos_key is None
    assert settings.cosmos_database == "aoc"
    assert settings.queue_message_encoding == "base64"
    assert settings.http_connect_timeout_seconds == 5.0
    assert settings.http_read_timeout_seconds == 30.0
    assert settings.health_timeout_seconds == 5.0
    assert settings.uses_storage_identity


def test_reads_exact_azure_names_from_environment(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", CONNECTION_STRING)
    monkeypatch.setenv("COSMOS_ENDPOINT", "https://cosmos.example:8081/")
    monkeypatch.setenv("COSMOS_KEY", COSMOS_KEY)
    monkeypatch.setenv("COSMOS_DATABASE", "aoc-test")
    monkeypatch.setenv("COSMOS_CLIENT_ID", "cosmos-client")
    monkeypatch.setenv("COSMOS_CA_CERT_PATH", "/certs/ca.pem")
    monkeypatch.setenv("QUEUE_MESSAGE_ENCODING", "none")
    monkeypatch.setenv("HTTP_CONNECT_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("HTTP_READ_TIMEOUT_SECONDS", "12")
    monkeypatch.setenv("HEALTH_TIMEOUT_SECONDS", "2")
    settings = AppSettings()
    assert isinstance(settings.storage_connection_string, SecretStr)
    assert settings.storage_connection_string.get_secret_value() == CONNECTION_STRING
    assert settings.cosmos_endpoint == "https://cosmos.example:8081/"
    assert isinstance(settings.cosmos_key, SecretStr)
    assert settings.cosmos_key.get_secret_value() == COSMOS_KEY
    assert settings.cosmos_database == "aoc-test"
    assert settings.cosmos_client_id == "cosmos-client"
    assert settings.cosmos_ca_cert_path == "/certs/ca.pem"
    assert settings.queue_message_encoding == "none"
    assert settings.http_connect_timeout_seconds == 1.5
    assert settings.http_read_timeout_seconds == 12.0
    assert settings.health_timeout_seconds == 2.0
    assert not settings.uses_storage_identity


def test_reads_identity_based_storage_names(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "myaccount")
    monkeypatch.setenv("AzureWebJobsStorage__clientId", "client-guid")
    monkeypatch.setenv("AzureWebJobsStorage__credential", "managedidentity")
    monkeypatch.setenv("AzureWebJobsStorage__tableServiceUri", "https://tables.example")
    settings = AppSettings()
    assert settings.storage_account_name == "myaccount"
    assert settings.storage_client_id == "client-guid"
    assert settings.storage_credential == "managedidentity"
    assert settings.storage_table_service_uri == "https://tables.example"
    assert settings.uses_storage_identity


def test_reads_local_settings_json_values(settings_file: Path) -> None:
    _write_values(
        settings_file,
        {"COSMOS_ENDPOINT": "https://from-file:8081/", "COSMOS_DATABASE": "file-db", "Other": None},
    )
    settings = AppSettings()
    assert settings.cosmos_endpoint == "https://from-file:8081/"
    assert settings.cosmos_database == "file-db"


def test_environment_wins_over_local_settings_json(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_values(
        settings_file,
        {"COSMOS_DATABASE": "file-db", "COSMOS_ENDPOINT": "https://from-file:8081/"},
    )
    monkeypatch.setenv("COSMOS_DATABASE", "env-db")
    settings = AppSettings()
    assert settings.cosmos_database == "env-db"
    assert settings.cosmos_endpoint == "https://from-file:8081/"


def test_local_settings_file_in_cwd_is_ignored_when_env_points_elsewhere(
    settings_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_dir = tmp_path / "cwd"
    other_dir.mkdir()
    _write_values(other_dir / "local.settings.json", {"COSMOS_DATABASE": "from-cwd"})
    monkeypatch.chdir(other_dir)
    assert AppSettings().cosmos_database == "aoc"


def test_local_settings_path_defaults_to_cwd_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOCAL_SETTINGS_ENV, raising=False)
    assert local_settings_path() == Path("local.settings.json")


def test_read_local_settings_values(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    assert read_local_settings_values(path) == {}
    _write_values(path, {"A": 1, "B": None, "C": "x"})
    assert read_local_settings_values(path) == {"A": "1", "B": "", "C": "x"}
    path.write_text(json.dumps({"Values": ["not", "an", "object"]}), encoding="utf-8")
    with pytest.raises(ValueError, match="Values"):
        read_local_settings_values(path)


def test_connection_string_and_identity_settings_conflict(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", CONNECTION_STRING)
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "myaccount")
    with pytest.raises(ValidationError, match="not both"):
        AppSettings()


def test_conflict_across_environment_and_local_settings(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_values(settings_file, {"AzureWebJobsStorage__queueServiceUri": "https://q.example"})
    monkeypatch.setenv("AzureWebJobsStorage", CONNECTION_STRING)
    with pytest.raises(ValidationError):
        AppSettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("QUEUE_MESSAGE_ENCODING", "utf8"),
        ("HTTP_CONNECT_TIMEOUT_SECONDS", "0"),
        ("HTTP_READ_TIMEOUT_SECONDS", "-1"),
        ("HEALTH_TIMEOUT_SECONDS", "soon"),
    ],
)
def test_invalid_values_rejected(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        AppSettings()


def test_storage_service_uri_from_account_name(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "myaccount")
    settings = AppSettings()
    assert settings.storage_service_uri("queue") == "https://myaccount.queue.core.windows.net"
    assert settings.storage_service_uri("blob") == "https://myaccount.blob.core.windows.net"
    assert settings.storage_service_uri("table") == "https://myaccount.table.core.windows.net"


def test_explicit_queue_service_uri_wins(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "myaccount")
    monkeypatch.setenv("AzureWebJobsStorage__queueServiceUri", "http://127.0.0.1:10001/devstoreaccount1")
    settings = AppSettings()
    assert settings.storage_service_uri("queue") == "http://127.0.0.1:10001/devstoreaccount1"
    assert settings.storage_service_uri("blob") == "https://myaccount.blob.core.windows.net"


def test_storage_service_uri_without_configuration(settings_file: Path) -> None:
    with pytest.raises(ValueError, match="AzureWebJobsStorage__queueServiceUri"):
        AppSettings().storage_service_uri("queue")


def test_secrets_are_hidden_in_repr(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", CONNECTION_STRING)
    monkeypatch.setenv("COSMOS_KEY", COSMOS_KEY)
    settings = AppSettings()
    for text in (repr(settings), str(settings), repr(settings.model_dump())):
        assert COSMOS_KEY not in text
        assert "c2VjcmV0LWtleS1mb3ItdGVzdHM=" not in text
        assert "AccountKey" not in text
    assert "**********" in repr(settings)


def test_settings_are_frozen(settings_file: Path) -> None:
    settings = AppSettings()
    with pytest.raises(ValidationError):
        settings.cosmos_database = "other"  # type: ignore[misc]


def test_populate_by_field_name(settings_file: Path) -> None:
    settings = AppSettings(cosmos_database="by-name", queue_message_encoding="none")
    assert settings.cosmos_database == "by-name"
    assert settings.queue_message_encoding == "none"


def test_empty_connection_string_counts_as_unset(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", "")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "myaccount")
    settings = AppSettings()
    assert settings.storage_service_uri("queue") == "https://myaccount.queue.core.windows.net"
    assert settings.uses_storage_identity
