"""infra/scripts/grant-permissions.sh against a stand-in `az` that behaves as az rest does with tokens.

`az rest` attaches a token only when the URL's host is one of the current cloud's endpoints or when
`--resource` names the token's audience. The DoD Graph host (dod-graph.microsoft.us) is not an
endpoint of the AzureUSGovernment cloud, so without `--resource` its calls go out with no token and
Graph answers 401. The stand-in refuses such calls the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "grant-permissions.sh"
PRINCIPAL = "0a0a0a0a-1111-4222-8333-444444444444"

FAKE_AZ = r"""
import json, os, sys
from urllib.parse import urlsplit

args = sys.argv[1:]
def option(name):
    return args[args.index(name) + 1] if name in args else None

if args[:2] == ["account", "show"]:
    sys.exit(0)
if args[:2] == ["cloud", "show"]:
    print(os.environ["FAKE_AZ_CLOUD_GRAPH"])
    sys.exit(0)
assert args[0] == "rest", args
url, resource, query = option("--url"), option("--resource"), option("--query")
cloud_host = urlsplit(os.environ["FAKE_AZ_CLOUD_GRAPH"]).hostname
token = resource is not None or urlsplit(url).hostname == cloud_host
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(json.dumps({"method": option("--method"), "url": url, "resource": resource,
                          "token": token, "body": option("--body")}) + "\n")
if not token:
    print("Unauthorized({\"error\":{\"code\":\"InvalidAuthenticationToken\"}})", file=sys.stderr)
    sys.exit(1)
principal = os.environ["FAKE_AZ_PRINCIPAL"]
roles = {
    "graph-sp": ["AuditLog.Read.All", "Directory.Read.All", "DeviceManagementApps.Read.All",
                 "DeviceManagementConfiguration.Read.All", "Application.Read.All",
                 "Application.ReadWrite.All"],
    "o365-sp": ["ActivityFeed.Read", "ActivityFeed.ReadDlp"],
}
path = urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else "")
if option("--method") == "POST":
    sys.exit(0)
if path.endswith(f"/servicePrincipals/{principal}?$select=displayName"):
    print("id-aoc-test")
elif "/appRoleAssignments" in path:
    print("None" if query == '"@odata.nextLink"' else "")
elif "servicePrincipals(appId='00000003-0000-0000-c000-000000000000')" in path:
    print("graph-sp")
elif "servicePrincipals(appId='c5393580-f805-4401-95e8-94b7a6ef2fc2')" in path:
    print("o365-sp")
elif path.endswith("?$select=appRoles"):
    sp = path.split("/servicePrincipals/")[1].split("?")[0]
    for i, value in enumerate(roles[sp]):
        print(f"{value}\t{sp}-role-{i}")
else:
    print(f"unexpected request {path}", file=sys.stderr)
    sys.exit(2)
"""


def run_script(
    tmp_path: Path, cloud_graph: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(f"#!{sys.executable}\n{FAKE_AZ}")
    az.chmod(0o755)
    log = tmp_path / "az.log"
    inherited = {k: v for k, v in os.environ.items() if k != "GOVERNANCE_UPDATE_MODE"}
    environment = {
        **inherited,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_AZ_LOG": str(log),
        "FAKE_AZ_CLOUD_GRAPH": cloud_graph,
        "FAKE_AZ_PRINCIPAL": PRINCIPAL,
        **(env or {}),
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), "--principal-id", PRINCIPAL, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


@pytest.mark.parametrize(
    ("cloud_graph", "args", "graph"),
    [
        # DoD: the az cloud is AzureUSGovernment, whose Graph endpoint is graph.microsoft.us.
        ("https://graph.microsoft.us/", ["--graph-url", "https://dod-graph.microsoft.us"], "https://dod-graph.microsoft.us"),
        ("https://graph.microsoft.com/", [], "https://graph.microsoft.com"),
        ("https://graph.microsoft.us/", [], "https://graph.microsoft.us"),
    ],
    ids=["dod-graph-url", "global-default", "usgov-default"],
)  # fmt: skip
def test_every_graph_call_names_its_token_audience(
    tmp_path: Path, cloud_graph: str, args: list[str], graph: str
) -> None:
    result, calls = run_script(tmp_path, cloud_graph, *args)

    assert result.returncode == 0, result.stderr
    assert "Done: 6 granted, 0 already present." in result.stdout
    rest_calls = [c for c in calls if c["method"]]
    assert len(rest_calls) >= 8
    assert all(c["resource"] == graph for c in rest_calls), rest_calls
    assert all(urlsplit(c["url"]).scheme + "://" + urlsplit(c["url"]).hostname == graph for c in rest_calls)
    posts = [json.loads(c["body"]) for c in rest_calls if c["method"] == "POST"]
    assert {p["appRoleId"] for p in posts} == {
        "graph-sp-role-0", "graph-sp-role-1", "graph-sp-role-2", "graph-sp-role-3", "graph-sp-role-4",
        "o365-sp-role-0",
    }  # fmt: skip
    assert all(p["principalId"] == PRINCIPAL for p in posts)


def test_dry_run_reads_with_a_token_and_grants_nothing(tmp_path: Path) -> None:
    result, calls = run_script(
        tmp_path, "https://graph.microsoft.us/", "--graph-url", "https://dod-graph.microsoft.us", "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert all(c["token"] for c in calls)
    assert [c for c in calls if c["method"] == "POST"] == []
    assert result.stdout.count("(dry run: not granted)") == 6


# -- service principal governance (issue 18) -------------------------------------------------------------

GRAPH = "https://graph.microsoft.com/"


def _granted(calls: list) -> set[str]:
    return {json.loads(c["body"])["appRoleId"] for c in calls if c["method"] == "POST"}


@pytest.mark.parametrize(
    ("args", "env"),
    [([], {}), ([], {"GOVERNANCE_UPDATE_MODE": "ReportOnly"}), (["--governance-mode", "ReportOnly"], {})],
    ids=["default", "env-report-only", "flag-report-only"],
)
def test_report_only_governance_gets_the_read_permission_and_never_the_write_one(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    result, calls = run_script(tmp_path, GRAPH, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert "Governance: ReportOnly" in result.stdout
    assert "Microsoft Graph: Application.Read.All (granted)" in result.stdout
    assert "Application.ReadWrite.All" not in result.stdout
    assert "graph-sp-role-4" in _granted(calls)
    assert "graph-sp-role-5" not in _granted(calls)


@pytest.mark.parametrize(
    ("args", "env"),
    [([], {"GOVERNANCE_UPDATE_MODE": "Update"}), (["--governance-mode", "Update"], {})],
    ids=["env", "flag"],
)
def test_update_mode_also_grants_the_least_privilege_that_writes_notes(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    result, calls = run_script(tmp_path, GRAPH, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert "Governance: Update" in result.stdout
    assert "Microsoft Graph: Application.ReadWrite.All (granted)" in result.stdout
    assert "Done: 7 granted, 0 already present." in result.stdout
    assert {"graph-sp-role-4", "graph-sp-role-5"} <= _granted(calls)


def test_the_flag_overrides_the_environment(tmp_path: Path) -> None:
    result, calls = run_script(
        tmp_path, GRAPH, "--governance-mode", "ReportOnly", env={"GOVERNANCE_UPDATE_MODE": "Update"}
    )
    assert result.returncode == 0, result.stderr
    assert "graph-sp-role-5" not in _granted(calls)


@pytest.mark.parametrize("mode", ["update", "Write", ""], ids=["lower-case", "unknown", "empty"])
def test_an_unknown_governance_mode_is_refused_before_any_call(tmp_path: Path, mode: str) -> None:
    result, calls = run_script(tmp_path, GRAPH, env={"GOVERNANCE_UPDATE_MODE": mode})
    if not mode:  # empty, as unset: the app's default, ReportOnly
        assert result.returncode == 0, result.stderr
        assert "Governance: ReportOnly" in result.stdout
        return
    assert result.returncode != 0
    assert "must be ReportOnly or Update" in result.stderr
    assert calls == []
