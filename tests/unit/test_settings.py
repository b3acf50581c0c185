"""AppSettings: Azure app-setting names, environment over local.settings.json, storage validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from shared.platform.settings import (
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
        settings.cosmos_database = "other"


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


# --- API authentication: SWA mode needs the platform; Entra mode needs the API's client id --------------

API_AUTH_NAMES = (
    "API_AUTH_MODE",
    "API_AUDIENCE",
    "API_CLIENT_ID",
    "WEBSITE_AUTH_ENABLED",
    "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER",
)
API_GUID = "5b0f3c9e-2d4a-4f61-9a7e-3c1d2b8e6f40"


@pytest.fixture
def api_auth_env(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in API_AUTH_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("platform_value", [None, "False", "false", "", "1", "yes"])
def test_swa_mode_is_refused_without_app_service_authentication(
    api_auth_env: pytest.MonkeyPatch, platform_value: str | None
) -> None:
    api_auth_env.setenv("API_AUTH_MODE", "swa")
    if platform_value is not None:
        api_auth_env.setenv("WEBSITE_AUTH_ENABLED", platform_value)
    with pytest.raises(ValidationError) as caught:
        AppSettings()
    message = str(caught.value)
    assert "WEBSITE_AUTH_ENABLED=True" in message
    assert "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER=1" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBSITE_AUTH_ENABLED", "True"),  # as App Service sets it
        ("WEBSITE_AUTH_ENABLED", "true"),
        ("AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER", "1"),
        ("AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER", "true"),
    ],
)
def test_swa_mode_is_accepted_behind_the_platform_or_with_the_unsafe_local_flag(
    api_auth_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    api_auth_env.setenv("API_AUTH_MODE", "swa")
    api_auth_env.setenv(name, value)
    assert AppSettings().api_auth_mode == "swa"


def test_the_unsafe_flag_also_works_from_local_settings_json(
    api_auth_env: pytest.MonkeyPatch, settings_file: Path
) -> None:
    _write_values(settings_file, {"API_AUTH_MODE": "swa", "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER": "1"})
    assert AppSettings().unsafe_trust_client_principal_header


def test_other_modes_ignore_the_swa_prerequisites(api_auth_env: pytest.MonkeyPatch) -> None:
    assert AppSettings().api_auth_mode == "keys"
    assert not AppSettings().platform_auth_enabled


@pytest.mark.parametrize(
    ("audience", "client_id", "expected"),
    [
        ("api://aoc-functions", API_GUID, (API_GUID, "api://aoc-functions")),  # the documented pair
        (f"api://{API_GUID}", None, (API_GUID, f"api://{API_GUID}")),  # the portal's default URI
        (API_GUID.upper(), None, (API_GUID, None)),  # older deployments: the client id as audience
        (None, API_GUID, (API_GUID, None)),
        (API_GUID, API_GUID, (API_GUID, None)),
    ],
)
def test_entra_mode_knows_the_client_id_and_the_app_id_uri(
    api_auth_env: pytest.MonkeyPatch,
    audience: str | None,
    client_id: str | None,
    expected: tuple[str, str | None],
) -> None:
    api_auth_env.setenv("API_AUTH_MODE", "entra")
    if audience is not None:
        api_auth_env.setenv("API_AUDIENCE", audience)
    if client_id is not None:
        api_auth_env.setenv("API_CLIENT_ID", client_id)
    assert AppSettings().api_token_audience == expected


@pytest.mark.parametrize(
    ("audience", "client_id", "complaint"),
    [
        ("api://aoc-functions", None, "API_CLIENT_ID"),  # v2.0 tokens could never be accepted
        (None, None, "API_CLIENT_ID"),
        ("api://aoc-functions", "aoc-functions", "GUID"),
        (API_GUID, "99999999-9999-4999-8999-999999999999", "API_AUDIENCE"),
    ],
)
def test_entra_mode_refuses_to_start_without_a_usable_client_id(
    api_auth_env: pytest.MonkeyPatch, audience: str | None, client_id: str | None, complaint: str
) -> None:
    api_auth_env.setenv("API_AUTH_MODE", "entra")
    if audience is not None:
        api_auth_env.setenv("API_AUDIENCE", audience)
    if client_id is not None:
        api_auth_env.setenv("API_CLIENT_ID", client_id)
    with pytest.raises(ValidationError, match=complaint):
        AppSettings()


# --- Unresolved Key Vault references and missing secrets (issue 13, finding 9) ---------------------

KEY_VAULT_SETTINGS = (
    "DEVOPS_AUTH_MODE",
    "DEVOPS_PAT",
    "ALERT_CHANNELS",
    "API_CONTINUATION_SECRET",
    "M365_AUTH_MODE",
    "M365_CLIENT_SECRET",
    "M365_CERTIFICATE_PEM",
    "PROBE_ENABLED",
    "API_AUDIENCE",
)
CHANNELS = '[{"name": "teams", "type": "teams", "url": "https://contoso.webhook.office.com/x"}]'


def kv(secret: str) -> str:
    return f"@Microsoft.KeyVault(VaultName=kv-aoc-test;SecretName={secret})"


@pytest.fixture
def kv_env(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in KEY_VAULT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_an_unresolved_key_vault_reference_is_unset_and_named(kv_env: pytest.MonkeyPatch) -> None:
    kv_env.setenv("DEVOPS_AUTH_MODE", "pat")
    kv_env.setenv("DEVOPS_PAT", kv("devops-pat"))
    kv_env.setenv("ALERT_CHANNELS", kv("alert-channels"))
    kv_env.setenv(
        "API_CONTINUATION_SECRET",
        "@Microsoft.KeyVault(SecretUri=https://kv-aoc-test.vault.azure.net/secrets/api-continuation-secret/)",
    )
    settings = AppSettings()

    assert settings.devops_pat is None
    assert settings.alert_channels is None
    assert settings.api_continuation_secret is None
    assert settings.unresolved_key_vault_references == {
        "DEVOPS_PAT": "devops-pat",
        "ALERT_CHANNELS": "alert-channels",
        "API_CONTINUATION_SECRET": "api-continuation-secret",
    }
    issues = {issue.setting: issue for issue in settings.configuration_issues()}
    assert set(issues) == {"DEVOPS_PAT", "ALERT_CHANNELS", "API_CONTINUATION_SECRET"}
    assert all(issue.problem == "unresolved_key_vault_reference" for issue in issues.values())
    assert issues["ALERT_CHANNELS"].secret_name == "alert-channels"
    assert "no notification is sent" in issues["ALERT_CHANNELS"].detail
    assert "no backup pipeline can be queued" in issues["DEVOPS_PAT"].detail


@pytest.mark.parametrize(
    "reference",
    [
        "@Microsoft.KeyVault(VaultName=kv;SecretName=devops-pat)",
        "@microsoft.keyvault(VaultName=kv;SecretName=devops-pat)",
        "  @Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/devops-pat/0123abcd)",
        "@Microsoft.KeyVault(VaultName=kv;SecretName=devops-pat;SecretVersion=0123abcd)",
    ],
)
def test_every_reference_form_is_recognised_wherever_it_comes_from(
    kv_env: pytest.MonkeyPatch, settings_file: Path, reference: str
) -> None:
    kv_env.setenv("DEVOPS_PAT", reference)
    assert AppSettings().unresolved_key_vault_references == {"DEVOPS_PAT": "devops-pat"}

    kv_env.delenv("DEVOPS_PAT")
    _write_values(settings_file, {"DEVOPS_PAT": reference})
    settings = AppSettings()
    assert settings.devops_pat is None
    assert settings.unresolved_key_vault_references == {"DEVOPS_PAT": "devops-pat"}


def test_a_resolved_secret_and_a_plain_value_are_kept(kv_env: pytest.MonkeyPatch) -> None:
    kv_env.setenv("DEVOPS_AUTH_MODE", "pat")
    kv_env.setenv("DEVOPS_PAT", "a-real-pat-that-mentions-@Microsoft.KeyVault(")
    kv_env.setenv("ALERT_CHANNELS", CHANNELS)
    kv_env.setenv("API_CONTINUATION_SECRET", "resolved-secret-value")
    settings = AppSettings()
    assert settings.devops_pat == SecretStr("a-real-pat-that-mentions-@Microsoft.KeyVault(")
    assert settings.unresolved_key_vault_references == {}
    assert settings.configuration_issues() == []


def test_a_reference_in_a_plain_setting_falls_back_to_the_default(kv_env: pytest.MonkeyPatch) -> None:
    kv_env.setenv("PROBE_ENABLED", kv("probe-enabled"))
    settings = AppSettings()
    assert settings.probe_enabled is True
    assert settings.unresolved_key_vault_references == {"PROBE_ENABLED": "probe-enabled"}
    (issue,) = [i for i in settings.configuration_issues() if i.setting == "PROBE_ENABLED"]
    assert issue.problem == "unresolved_key_vault_reference"


def test_missing_secrets_that_the_configuration_needs_are_reported(kv_env: pytest.MonkeyPatch) -> None:
    kv_env.setenv("DEVOPS_AUTH_MODE", "pat")
    kv_env.setenv("M365_AUTH_MODE", "msal")
    issues = {issue.setting: issue for issue in AppSettings().configuration_issues()}
    assert set(issues) == {"ALERT_CHANNELS", "DEVOPS_PAT", "M365_CLIENT_SECRET", "API_CONTINUATION_SECRET"}
    assert all(issue.problem == "missing" for issue in issues.values())
    assert "DEVOPS_AUTH_MODE is pat" in issues["DEVOPS_PAT"].detail
    assert "M365_AUTH_MODE is msal" in issues["M365_CLIENT_SECRET"].detail

    kv_env.setenv("M365_CERTIFICATE_PEM", kv("m365-certificate-pem"))
    kv_env.setenv("PROBE_ENABLED", "false")
    problems = {issue.setting: issue.problem for issue in AppSettings().configuration_issues()}
    assert problems == {
        "ALERT_CHANNELS": "missing",
        "API_CONTINUATION_SECRET": "missing",
        "M365_CERTIFICATE_PEM": "unresolved_key_vault_reference",
    }


def test_an_empty_alert_channels_setting_is_reported_as_missing(kv_env: pytest.MonkeyPatch) -> None:
    kv_env.setenv("ALERT_CHANNELS", "")
    kv_env.setenv("API_CONTINUATION_SECRET", "x" * 32)
    (issue,) = AppSettings().configuration_issues()
    assert (issue.setting, issue.problem) == ("ALERT_CHANNELS", "missing")


def test_devops_defaults_to_the_managed_identity(kv_env: pytest.MonkeyPatch) -> None:
    kv_env.setenv("M365_AUTH_MODE", "msal")
    settings = AppSettings()
    assert settings.devops_auth_mode == "token"
    assert "DEVOPS_PAT" not in {issue.setting for issue in settings.configuration_issues()}


def test_configuration_problems_are_logged_once_by_name_never_by_value(
    kv_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.platform.settings import get_settings

    secret_reference = kv("api-continuation-secret")
    kv_env.setenv("API_CONTINUATION_SECRET", secret_reference)
    kv_env.setenv("ALERT_CHANNELS", CHANNELS)
    get_settings.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="shared.platform.settings"):
            get_settings()
            get_settings()
    finally:
        get_settings.cache_clear()
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.platform.settings"]
    assert len(lines) == 1
    assert "API_CONTINUATION_SECRET" in lines[0]
    assert "api-continuation-secret" in lines[0]
    assert secret_reference not in caplog.text
    assert "contoso.webhook.office.com" not in caplog.text


def test_the_make_run_settings_need_nothing_more(kv_env: pytest.MonkeyPatch) -> None:
    """local.settings.json.example (what `make run` copies) is complete: its /api/health shows no issue."""
    example = Path(__file__).resolve().parents[2] / "local.settings.json.example"
    kv_env.setenv(LOCAL_SETTINGS_ENV, str(example))
    settings = AppSettings()
    assert settings.devops_auth_mode == "pat"  # the simulator's Azure DevOps takes a PAT
    assert settings.configuration_issues() == []


def test_the_commit_is_read_from_aoc_commit_and_bounded(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert AppSettings().commit is None
    monkeypatch.setenv("AOC_COMMIT", "0123abc")
    assert AppSettings().commit == "0123abc"
    monkeypatch.setenv("AOC_COMMIT", "f" * 101)
    with pytest.raises(ValidationError):
        AppSettings()


# --- Activity datasets (issue 19) ----------------------------------------------------------------------

DATASET_SETTING_NAMES = (
    "LOG_ANALYTICS_WORKSPACE_ID",
    "LOG_ANALYTICS_ENDPOINT",
    "LOG_ANALYTICS_SERVER_TIMEOUT_SECONDS",
    "DATASETS_REFRESH_PER_MINUTE",
    "DATASETS_REFRESH_SCHEDULE",
    "M365_CLOUD",
)


@pytest.fixture
def dataset_settings(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in DATASET_SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    return settings_file


def test_dataset_settings_default_to_no_workspace_and_the_clouds_query_api(
    dataset_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = AppSettings()
    assert settings.log_analytics_workspace is None
    assert settings.log_analytics_query_endpoint == "https://api.loganalytics.io/v1"
    assert settings.log_analytics_server_timeout_seconds == 180
    assert settings.datasets_refresh_per_minute == 6
    assert settings.datasets_refresh_schedule == "0 */5 * * * *"
    for cloud, endpoint in (
        ("usgov", "https://api.loganalytics.us/v1"),
        ("dod", "https://api.loganalytics.us/v1"),
        ("china", "https://api.loganalytics.azure.cn/v1"),
    ):
        monkeypatch.setenv("M365_CLOUD", cloud)
        assert AppSettings().log_analytics_query_endpoint == endpoint


def test_dataset_settings_read_their_azure_names(
    dataset_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_ANALYTICS_WORKSPACE_ID", " 9F3C1B2A-4D5E-4F60-8A7B-0C1D2E3F4A5B ")
    monkeypatch.setenv("LOG_ANALYTICS_ENDPOINT", "http://127.0.0.1:7072/v1/")
    monkeypatch.setenv("LOG_ANALYTICS_SERVER_TIMEOUT_SECONDS", "600")
    monkeypatch.setenv("DATASETS_REFRESH_PER_MINUTE", "30")
    settings = AppSettings()
    assert settings.log_analytics_workspace == "9f3c1b2a-4d5e-4f60-8a7b-0c1d2e3f4a5b"
    assert settings.log_analytics_query_endpoint == "http://127.0.0.1:7072/v1"  # a local simulator
    assert settings.log_analytics_server_timeout_seconds == 600
    assert settings.datasets_refresh_per_minute == 30


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LOG_ANALYTICS_WORKSPACE_ID", "my-workspace", "Workspace ID"),
        ("LOG_ANALYTICS_WORKSPACE_ID", "/subscriptions/x/resourceGroups/y/providers/z", "Workspace ID"),
        ("LOG_ANALYTICS_ENDPOINT", "http://api.loganalytics.io/v1", "https"),
        ("LOG_ANALYTICS_ENDPOINT", "api.loganalytics.io/v1", "absolute URL"),
        ("LOG_ANALYTICS_ENDPOINT", "https://api.loganalytics.io/v1?x=1", "absolute URL"),
        ("LOG_ANALYTICS_SERVER_TIMEOUT_SECONDS", "601", "less than or equal to 600"),
        ("LOG_ANALYTICS_SERVER_TIMEOUT_SECONDS", "0", "greater than or equal to 1"),
        ("DATASETS_REFRESH_PER_MINUTE", "0", "greater than or equal to 1"),
    ],
)
def test_dataset_settings_refuse_values_that_cannot_work(
    dataset_settings: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        AppSettings()
