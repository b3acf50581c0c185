"""host.json, local.settings.json, %setting% references and host keys."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from devtools.host.config import (
    DEFAULT_ROUTE_PREFIX,
    HostConfig,
    HostConfigError,
    HostKeys,
    QueueOptions,
    apply_local_settings,
    load_host_json,
    load_local_settings,
    load_or_create_keys,
    parse_timespan,
    resolve_setting_references,
)


def _write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# --- parse_timespan ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("00:00:02", 2.0),
        ("00:01:00", 60.0),
        ("01:00:00", 3600.0),
        ("1.00:00:00", 86400.0),
        ("2.03:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
        ("00:00:00.5", 0.5),
        (" 00:00:03 ", 3.0),
        (2000, 2.0),
        (500, 0.5),
        (1500.0, 1.5),
    ],
)
def test_parse_timespan(value: str | int | float, seconds: float) -> None:
    assert parse_timespan(value, field_name="x") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "2", "abc", "00:00", "1:2:3:4", "-00:00:01", "00:00:0x"])
def test_parse_timespan_rejects_bad_values(value: str) -> None:
    with pytest.raises(HostConfigError, match="myField"):
        parse_timespan(value, field_name="myField")


# --- load_host_json ---------------------------------------------------------------------------


def test_load_host_json_defaults_when_file_missing(tmp_path: Path) -> None:
    config = load_host_json(tmp_path / "host.json")
    assert config == HostConfig()
    assert config.route_prefix == DEFAULT_ROUTE_PREFIX == "api"
    assert config.queues == QueueOptions()
    assert config.queues.batch_size == 16
    assert config.queues.new_batch_threshold == 8
    assert config.queues.max_polling_interval == 60.0
    assert config.queues.visibility_timeout == 0.0
    assert config.queues.max_dequeue_count == 5
    assert config.queues.message_encoding == "base64"


def test_load_host_json_minimal_document_gets_defaults(tmp_path: Path) -> None:
    config = load_host_json(_write_json(tmp_path / "host.json", {"version": "2.0"}))
    assert config == HostConfig()


def test_load_host_json_reads_route_prefix(tmp_path: Path) -> None:
    path = _write_json(
        tmp_path / "host.json", {"version": "2.0", "extensions": {"http": {"routePrefix": "/v1/"}}}
    )
    assert load_host_json(path).route_prefix == "v1"


def test_load_host_json_empty_route_prefix_is_kept(tmp_path: Path) -> None:
    path = _write_json(
        tmp_path / "host.json", {"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}
    )
    assert load_host_json(path).route_prefix == ""


def test_load_host_json_reads_queue_options(tmp_path: Path) -> None:
    path = _write_json(
        tmp_path / "host.json",
        {
            "version": "2.0",
            "extensions": {
                "queues": {
                    "batchSize": 4,
                    "newBatchThreshold": 3,
                    "maxPollingInterval": "00:00:02",
                    "visibilityTimeout": "00:00:30",
                    "maxDequeueCount": 2,
                    "messageEncoding": "None",
                }
            },
        },
    )
    queues = load_host_json(path).queues
    assert queues == QueueOptions(
        batch_size=4,
        new_batch_threshold=3,
        max_polling_interval=2.0,
        visibility_timeout=30.0,
        max_dequeue_count=2,
        message_encoding="none",
    )


def test_load_host_json_new_batch_threshold_defaults_to_half_batch_size(tmp_path: Path) -> None:
    path = _write_json(
        tmp_path / "host.json", {"version": "2.0", "extensions": {"queues": {"batchSize": 10}}}
    )
    assert load_host_json(path).queues.new_batch_threshold == 5


def test_load_host_json_polling_interval_in_milliseconds(tmp_path: Path) -> None:
    path = _write_json(
        tmp_path / "host.json",
        {"version": "2.0", "extensions": {"queues": {"maxPollingInterval": 2000}}},
    )
    assert load_host_json(path).queues.max_polling_interval == 2.0


def test_load_host_json_reads_the_repository_host_json() -> None:
    repo_host_json = Path(__file__).resolve().parents[2] / "host.json"
    config = load_host_json(repo_host_json)
    assert isinstance(config, HostConfig)
    assert config.queues.message_encoding in ("base64", "none")


def test_a_sending_notification_claim_outlives_the_function_timeout() -> None:
    """A `sending` delivery is taken over only once its invocation is certainly dead (finding 7)."""
    from shared.notify.delivery_log import FUNCTION_TIMEOUT, SENDING_STALE

    document = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text(encoding="utf-8"))
    timeout = parse_timespan(document["functionTimeout"], field_name="functionTimeout")
    assert FUNCTION_TIMEOUT.total_seconds() == timeout
    assert SENDING_STALE.total_seconds() >= timeout + 60


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ({"batchSize": 0}, "batchSize"),
        ({"batchSize": 33}, "batchSize"),
        ({"messageEncoding": "utf8"}, "messageEncoding"),
        ({"maxPollingInterval": "00:00:00"}, "maxPollingInterval"),
        ({"maxPollingInterval": "soon"}, "maxPollingInterval"),
        ({"maxDequeueCount": 0}, "maxDequeueCount"),
    ],
)
def test_load_host_json_validation_errors(tmp_path: Path, queues: dict[str, object], message: str) -> None:
    path = _write_json(tmp_path / "host.json", {"version": "2.0", "extensions": {"queues": queues}})
    with pytest.raises(HostConfigError, match=message):
        load_host_json(path)


@pytest.mark.parametrize("batch_size", [1, 32])
def test_load_host_json_batch_size_bounds_are_inclusive(tmp_path: Path, batch_size: int) -> None:
    path = _write_json(
        tmp_path / "host.json", {"version": "2.0", "extensions": {"queues": {"batchSize": batch_size}}}
    )
    assert load_host_json(path).queues.batch_size == batch_size


def test_load_host_json_rejects_other_versions(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "host.json", {"version": "1.0"})
    with pytest.raises(HostConfigError, match="version"):
        load_host_json(path)


# --- local.settings.json ----------------------------------------------------------------------


def test_load_local_settings_missing_file(tmp_path: Path) -> None:
    settings = load_local_settings(tmp_path / "local.settings.json")
    assert settings.values == {}
    assert settings.local_http_port is None


def test_load_local_settings_reads_values_and_port(tmp_path: Path) -> None:
    path = _write_json(
        tmp_path / "local.settings.json",
        {
            "IsEncrypted": False,
            "Values": {"A": "1", "Number": 5, "Empty": None, "Flag": True},
            "Host": {"LocalHttpPort": 7123},
        },
    )
    settings = load_local_settings(path)
    assert settings.values == {"A": "1", "Number": "5", "Empty": "", "Flag": "True"}
    assert settings.local_http_port == 7123


def test_load_local_settings_without_host_section(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "local.settings.json", {"Values": {"A": "1"}})
    assert load_local_settings(path).local_http_port is None


def test_apply_local_settings_existing_environment_wins() -> None:
    environ = {"KEEP": "from-env", "OTHER": "x"}
    applied = apply_local_settings({"KEEP": "from-file", "NEW": "value", "NEW2": ""}, environ)
    assert environ == {"KEEP": "from-env", "OTHER": "x", "NEW": "value", "NEW2": ""}
    assert applied == ["NEW", "NEW2"]


def test_apply_local_settings_empty_environment_value_still_wins() -> None:
    environ = {"KEEP": ""}
    assert apply_local_settings({"KEEP": "from-file"}, environ) == []
    assert environ["KEEP"] == ""


# --- %setting% references ---------------------------------------------------------------------


def test_resolve_setting_references_substitutes() -> None:
    env = {"QueueName": "orders", "Env": "dev"}
    assert resolve_setting_references("%QueueName%", env) == "orders"
    assert resolve_setting_references("%QueueName%-%Env%-out", env) == "orders-dev-out"
    assert resolve_setting_references("plain", env) == "plain"


def test_resolve_setting_references_missing_setting() -> None:
    with pytest.raises(HostConfigError, match="Missing"):
        resolve_setting_references("%Missing%", {"Other": "x"})


@pytest.mark.parametrize("value", [5, None, ["%A%"], {"k": "%A%"}, 1.5, True])
def test_resolve_setting_references_non_str_passes_through(value: object) -> None:
    assert resolve_setting_references(value, {}) is value


def test_resolve_setting_references_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOC_TEST_QUEUE_NAME", "from-os-environ")
    assert resolve_setting_references("%AOC_TEST_QUEUE_NAME%") == "from-os-environ"


# --- host keys --------------------------------------------------------------------------------


def test_load_or_create_keys_creates_private_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "host-keys.json"
    keys = load_or_create_keys(path)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document == {"masterKey": keys.master_key, "functionKeys": keys.function_keys}
    assert len(keys.master_key) >= 32
    assert set(keys.function_keys) == {"default"}
    assert len(keys.function_keys["default"]) >= 32
    assert keys.master_key != keys.function_keys["default"]


def test_load_or_create_keys_returns_same_keys_second_time(tmp_path: Path) -> None:
    path = tmp_path / "host-keys.json"
    first = load_or_create_keys(path)
    second = load_or_create_keys(path)
    assert second == first


def test_load_or_create_keys_is_random_per_file(tmp_path: Path) -> None:
    one = load_or_create_keys(tmp_path / "one.json")
    two = load_or_create_keys(tmp_path / "two.json")
    assert one.master_key != two.master_key
    assert one.function_keys["default"] != two.function_keys["default"]


def test_load_or_create_keys_reads_existing_file(tmp_path: Path) -> None:
    path = _write_json(
        tmp_path / "keys.json", {"masterKey": "m-key", "functionKeys": {"default": "f1", "other": "f2"}}
    )
    assert load_or_create_keys(path) == HostKeys(
        master_key="m-key", function_keys={"default": "f1", "other": "f2"}
    )


@pytest.mark.parametrize(
    "document",
    [
        {"masterKey": "", "functionKeys": {"default": "f"}},
        {"masterKey": "m", "functionKeys": {}},
        {"masterKey": "m"},
    ],
)
def test_load_or_create_keys_rejects_incomplete_file(tmp_path: Path, document: dict[str, object]) -> None:
    path = _write_json(tmp_path / "keys.json", document)
    with pytest.raises(HostConfigError):
        load_or_create_keys(path)


def test_load_or_create_keys_missing_master_key_is_a_config_error(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "keys.json", {"functionKeys": {"default": "f"}})
    with pytest.raises(HostConfigError):
        load_or_create_keys(path)


def test_host_keys_checks() -> None:
    keys = HostKeys(master_key="master", function_keys={"default": "fn1", "second": "fn2"})
    assert keys.is_function_key("fn1")
    assert keys.is_function_key("fn2")
    assert not keys.is_function_key("master")
    assert not keys.is_function_key("fn")
    assert not keys.is_function_key("")
    assert keys.is_master_key("master")
    assert not keys.is_master_key("fn1")
    assert not keys.is_master_key("MASTER")
