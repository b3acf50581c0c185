"""infra/scripts/console_config.py: the deploy step that writes the console's config.json and widens the
Static Web App's Content-Security-Policy, from the azd environment."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "console_config.py"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0a0a0a0a-1111-4222-8333-444444444444"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("console_config", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["console_config"] = module
    spec.loader.exec_module(module)
    return module


cc = _load()

ENV = {
    "SERVICE_API_URI": "https://func-aoc-abc.azurewebsites.net",
    "SERVICE_WEB_URI": "https://nice-sea-0a1b2c3d4.5.azurestaticapps.net",
    "CONSOLE_TENANT_ID": TENANT,
    "CONSOLE_CLIENT_ID": CLIENT,
    "API_AUDIENCE": "api://aoc-functions",
    "API_AUTH_MODE": "entra",
}


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>AOC</title>")
    shutil.copy(ROOT / "web" / "staticwebapp.config.json", folder / "staticwebapp.config.json")
    return folder


def test_the_document_has_exactly_the_contract_keys_and_no_secret() -> None:
    env = {**ENV, "M365_CLIENT_SECRET": "s3cr3t-value", "DEVOPS_PAT": "pat-value", "ALERT_CHANNELS": "{}"}
    config, warnings = cc.config_from_environment(env, "1.2.3")
    document = config.document()
    assert tuple(document) == cc.CONFIG_KEYS
    assert document == {
        "apiBaseUrl": "https://func-aoc-abc.azurewebsites.net/api",
        "clientId": CLIENT,
        "authority": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "knownAuthorities": ["login.microsoftonline.com"],
        "scopes": ["api://aoc-functions/access_as_user"],
        "redirectUri": "https://nice-sea-0a1b2c3d4.5.azurestaticapps.net/redirect.html",
        "version": "1.2.3",
    }
    assert warnings == []
    text = json.dumps(document)
    assert "s3cr3t" not in text
    assert "pat-value" not in text


def test_the_keys_match_what_the_local_host_serves() -> None:
    """The local host (devtools/host/static_site.py) and the deploy write the same document."""
    from devtools.host.static_site import ConsoleConfig

    local = ConsoleConfig(client_id=CLIENT, authority="https://x/t/v2.0", scopes=["s"]).document("https://o")
    assert tuple(local) == cc.CONFIG_KEYS


@pytest.mark.parametrize("cloud", ["global", "usgov", "dod", "china"])
def test_each_clouds_authority_is_the_apps_authority_host(cloud: str) -> None:
    from shared.m365.cloud import CLOUDS, parse_cloud_name

    endpoints = CLOUDS[parse_cloud_name(cloud)]
    assert cc.CLOUD_AUTHORITY_HOSTS[cloud] == endpoints.authority_host
    config, _ = cc.config_from_environment({**ENV, "M365_CLOUD": cloud.upper()}, "1")
    assert config.authority == f"{endpoints.authority_host}/{TENANT}/v2.0"
    assert config.document()["knownAuthorities"] == [endpoints.authority_host.removeprefix("https://")]


def test_the_script_knows_every_cloud_and_the_same_default_as_the_parameters() -> None:
    from shared.m365.cloud import CLOUD_NAMES

    assert set(cc.CLOUD_AUTHORITY_HOSTS) == set(CLOUD_NAMES)
    mapped = json.loads((ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    assert mapped["m365Cloud"]["value"] == f"${{M365_CLOUD={cc.DEFAULT_CLOUD}}}"


@pytest.mark.parametrize(
    ("console_scopes", "audience"),
    [
        ("", "api://aoc-functions"),
        ("", "api://aoc-functions/"),
        ("a b,c", "api://x"),
        ("", ""),
        (" , ", "api://y"),
    ],
)
def test_scopes_follow_the_settings_models_rule(
    console_scopes: str, audience: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.platform.settings import AppSettings, setting_names

    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AOC_LOCAL_SETTINGS_FILE", "/nonexistent/local.settings.json")
    monkeypatch.setenv("CONSOLE_SCOPES", console_scopes)
    monkeypatch.setenv("API_AUDIENCE", audience)
    assert cc.scope_list(console_scopes, audience) == AppSettings().console_scope_list


def test_overrides_win() -> None:
    env = {
        **ENV,
        "CONSOLE_AUTHORITY": "https://login.example.test/contoso.onmicrosoft.com/v2.0/",
        "CONSOLE_API_BASE_URL": "https://api.contoso.test/aoc/api/",
        "CONSOLE_SCOPES": "api://custom/access_as_user",
    }
    config, _ = cc.config_from_environment(env, "1")
    assert config.authority == "https://login.example.test/contoso.onmicrosoft.com/v2.0"
    assert config.api_base_url == "https://api.contoso.test/aoc/api"
    assert config.api_origin == "https://api.contoso.test"
    assert config.scopes == ("api://custom/access_as_user",)


def test_a_missing_client_id_is_a_warning_and_keys_mode_is_too() -> None:
    env = {key: value for key, value in ENV.items() if key not in ("CONSOLE_CLIENT_ID", "API_AUTH_MODE")}
    config, warnings = cc.config_from_environment(env, "1")
    assert config.client_id == ""
    assert any("CONSOLE_CLIENT_ID" in w for w in warnings)
    assert any("API_AUTH_MODE" in w for w in warnings)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SERVICE_API_URI", "", "SERVICE_API_URI is not set"),
        ("SERVICE_WEB_URI", "", "SERVICE_WEB_URI is not set"),
        ("SERVICE_API_URI", "http://func.azurewebsites.net", "https URL"),
        ("SERVICE_WEB_URI", "https://site.example/app", "must be an origin"),
        ("SERVICE_WEB_URI", "https://site.example?x=1", "query"),
        ("SERVICE_WEB_URI", "https://user:pw@site.example", "credentials"),
        ("SERVICE_WEB_URI", "https://site.example:99999", "not a URL"),
        ("SERVICE_WEB_URI", "javascript:alert(1)", "https URL"),
        ("CONSOLE_AUTHORITY", "http://login.microsoftonline.com/t/v2.0", "https URL"),
        ("CONSOLE_CLIENT_ID", "not-a-guid", "GUID"),
        ("CONSOLE_TENANT_ID", "", "CONSOLE_TENANT_ID is not set"),
        ("CONSOLE_TENANT_ID", "../../evil", "tenant id"),
        ("M365_CLOUD", "mars", "M365_CLOUD"),
        ("CONSOLE_SCOPES", "api://x/\u00e9", "scope"),
    ],
)
def test_hostile_or_missing_values_are_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(cc.ConfigError, match=message):
        cc.config_from_environment({**ENV, name: value}, "1")


def test_the_tenant_falls_back_to_the_deployments_tenant() -> None:
    env = {key: value for key, value in ENV.items() if key != "CONSOLE_TENANT_ID"}
    config, _ = cc.config_from_environment({**env, "AZURE_TENANT_ID": TENANT}, "1")
    assert TENANT in config.authority


def test_the_csp_gains_the_api_and_authority_origins_once() -> None:
    config, _ = cc.config_from_environment({**ENV, "M365_CLOUD": "china"}, "1")
    site = json.loads((ROOT / "web" / "staticwebapp.config.json").read_text())
    once = cc.widen_site_config(site, config)
    twice = cc.widen_site_config(once, config)
    assert once == twice
    policy = once["globalHeaders"]["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert "https://func-aoc-abc.azurewebsites.net" in directives["connect-src"]
    assert "https://login.chinacloudapi.cn" in directives["connect-src"]
    assert "https://login.chinacloudapi.cn" in directives["frame-src"]
    assert "https://func-aoc-abc.azurewebsites.net" not in directives["frame-src"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert directives["script-src"] == ["'self'"]
    assert site["globalHeaders"]["Content-Security-Policy"] != policy, "the input is not modified"


def test_route_level_policies_are_widened_and_a_config_without_a_policy_is_refused() -> None:
    config, _ = cc.config_from_environment(ENV, "1")
    site = {"routes": [{"route": "/x", "headers": {"content-security-policy": "default-src 'none'"}}]}
    widened = cc.widen_site_config(site, config)
    policy = widened["routes"][0]["headers"]["content-security-policy"]
    assert policy.startswith("default-src 'none'; connect-src https://func-aoc-abc")
    with pytest.raises(cc.ConfigError, match="no Content-Security-Policy"):
        cc.widen_site_config({"globalHeaders": {}}, config)


@pytest.mark.parametrize(
    ("policy", "additions"),
    [
        (
            "default-src 'self'; connect-src 'self'",
            {"connect-src": ["https://a"], "frame-src": ["https://b"]},
        ),
        ("default-src 'none'", {"connect-src": ["https://a", "https://a"]}),
        ("DEFAULT-SRC 'self' ;; img-src data:", {"img-src": ["data:"], "frame-src": [""]}),
        ("", {"connect-src": ["https://a"]}),
    ],
)
def test_add_csp_sources_agrees_with_the_local_hosts(policy: str, additions: dict[str, list[str]]) -> None:
    from devtools.host.static_site import add_csp_sources

    assert cc.add_csp_sources(policy, additions) == add_csp_sources(policy, additions)


def test_main_writes_both_files_into_the_built_folder(dist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cc.main(["--dist", str(dist)], env=ENV) == 0
    document = json.loads((dist / "config.json").read_text())
    assert document["clientId"] == CLIENT
    assert document["version"] == cc.read_version()
    site = json.loads((dist / "staticwebapp.config.json").read_text())
    assert "https://func-aoc-abc.azurewebsites.net" in site["globalHeaders"]["Content-Security-Policy"]
    assert site["navigationFallback"]["rewrite"] == "/index.html"
    assert not list(dist.glob(".*.tmp"))
    assert "wrote" in capsys.readouterr().out
    assert cc.main(["--dist", str(dist)], env=ENV) == 0  # again: same files
    assert json.loads((dist / "staticwebapp.config.json").read_text()) == site


def test_main_fails_without_a_build_or_with_strict_and_no_client(
    tmp_path: Path, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cc.main(["--dist", str(tmp_path / "empty")], env=ENV) == 1
    assert "no index.html" in capsys.readouterr().err
    env = {key: value for key, value in ENV.items() if key != "CONSOLE_CLIENT_ID"}
    assert cc.main(["--dist", str(dist), "--strict"], env=env) == 1
    assert not (dist / "config.json").exists()
    assert cc.main(["--dist", str(dist)], env=env) == 0
    assert "warning: CONSOLE_CLIENT_ID" in capsys.readouterr().err


def test_the_version_is_the_apps() -> None:
    from shared.api.version_api import APP_VERSION

    assert cc.read_version() == APP_VERSION


def test_the_script_needs_only_the_standard_library() -> None:
    """The hook runs with the deploying machine's python3, without the project's virtual environment."""
    imported = {
        line.split()[1].split(".")[0]
        for line in SCRIPT.read_text().splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
