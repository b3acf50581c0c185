"""drift.yaml: the shipped defaults match what they should, and bad files give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.host.config import load_host_json
from shared.probe.scopes import DriftConfigError, load_drift_config, parse_drift_config


def _event(**fields: object) -> dict[str, object]:
    base = {
        "id": "x",
        "timestamp": "2026-11-20T10:00:00.000Z",
        "service": "Intune",
        "result": "success",
        "actor": {"upn": "admin@contoso.com"},
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("event", "is_change"),
    [
        (_event(source="intune_audit", category="DeviceConfiguration", operation_type="create"), True),
        (_event(source="intune_audit", category="Compliance", operation_type="delete"), True),
        (_event(source="intune_audit", category="Application", operation_type="assign"), True),
        (_event(source="intune_audit", category="DeviceConfiguration", operation_type="read"), False),
        (_event(source="intune_audit", category="Device", operation_type="action"), False),  # a wipe
        (
            _event(source="intune_audit", category="Compliance", operation_type="update", result="failure"),
            False,
        ),
        (
            _event(source="entra_audit", operation="Update conditional access policy", service="Directory"),
            True,
        ),
        (_event(source="entra_audit", operation="Add named location", service="Directory"), True),
        (
            _event(
                source="entra_audit", operation="Authentication Methods Policy Update", service="Directory"
            ),
            True,
        ),
        (_event(source="entra_audit", operation="Update a partner cross-tenant access setting"), True),
        (_event(source="entra_audit", operation="Add member to role", service="Directory"), False),
        (_event(source="o365_management", operation="Update conditional access policy"), False),
    ],
)
def test_default_scope_matches_configuration_changes_only(event: dict[str, object], is_change: bool) -> None:
    config = load_drift_config()
    assert config.scopes[0].name == "tenant-config"
    assert bool(config.changes_by_scope([event])["tenant-config"]) is is_change


def test_pipeline_comes_from_app_settings_and_stays_unset_without_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = Path("shared/probe/drift.yaml").read_text()
    for name in ("DEVOPS_ORGANIZATION", "DEVOPS_PROJECT", "DEVOPS_PIPELINE_ID"):
        monkeypatch.delenv(name, raising=False)
    assert parse_drift_config(text).scopes[0].pipeline is None

    monkeypatch.setenv("DEVOPS_ORGANIZATION", "contoso")
    monkeypatch.setenv("DEVOPS_PROJECT", "Config")
    monkeypatch.setenv("DEVOPS_PIPELINE_ID", "7")
    pipeline = parse_drift_config(text).scopes[0].pipeline
    assert pipeline is not None
    assert (pipeline.organization, pipeline.project, pipeline.pipeline_id, pipeline.ref_name) == (
        "contoso",
        "Config",
        7,
        "refs/heads/main",
    )


def test_a_bad_rule_names_the_scope_rule_and_field() -> None:
    text = (
        "scopes:\n  - name: s1\n    rules:\n      - source: intune_audit\n        categorys: [Compliance]\n"
    )
    with pytest.raises(DriftConfigError, match=r"scopes\.0\.rules\.0\.categorys"):
        parse_drift_config(text)


DRIFT_BOMB = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "scopes:\n  - name: s1\n    rules: [{source: intune_audit, x: *i}]",
    ]
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (DRIFT_BOMB, "more than 200000 nodes"),  # 9^9 nodes once expanded: refused before it is built
        ("scopes: &s [*s]", "recursive alias"),
        ("scopes:" + " [" * 100 + " ]" * 100, "deeper than 64"),
        ("scopes: [", "not valid YAML"),
        ("- just\n- a list", "must be a mapping"),
    ],
)
def test_a_hostile_drift_file_is_a_drift_config_error(tmp_path: Path, text: str, reason: str) -> None:
    """drift.yaml is a file an admin edits: it is loaded within shared.platform.yaml_bounded's bounds."""
    drift_file = tmp_path / "drift.yaml"
    drift_file.write_text(text, encoding="utf-8")
    with pytest.raises(DriftConfigError, match=reason) as refused:
        load_drift_config(str(drift_file))
    assert str(drift_file) in str(refused.value)


def test_app_settings_override_host_json(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(
        '{"version": "2.0", "extensions": {"queues": {"maxDequeueCount": 5}}}'
    )
    config = load_host_json(
        tmp_path / "host.json",
        {
            "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2",
            "AzureFunctionsJobHost__extensions__queues__visibilityTimeout": "00:00:07",
            "AzureFunctionsJobHost__extensions__http__routePrefix": "v1",
        },
    )
    assert config.queues.max_dequeue_count == 2
    assert config.queues.visibility_timeout == 7.0
    assert config.route_prefix == "v1"
