"""The user's path: `python -m devtools.run` (what `make run` runs) serves a healthy app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from devtools.services import PROJECT_ROOT, ServicePorts, free_port, require_node_modules
from tests.support.ci import service_missing
from tests.support.host_process import http_request, wait_until


def test_make_run_serves_health_with_every_dependency_ok(tmp_path: Path) -> None:
    try:
        require_node_modules()
    except Exception as exc:
        service_missing(str(exc))
    ports = ServicePorts.free()
    http_port = free_port()
    log_file = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if k not in ("AzureWebJobsStorage", "COSMOS_ENDPOINT")}
    simulator = f"http://127.0.0.1:{free_port()}"  # the environment wins over local.settings.json
    env.update(
        {
            "M365_AUTHORITY_HOST": simulator,
            "GRAPH_BASE_URL": f"{simulator}/graph",
            "MANAGEMENT_BASE_URL": f"{simulator}/manage",
        }
    )
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devtools.run",
                "--port",
                str(http_port),
                "--blob-port",
                str(ports.blob),
                "--queue-port",
                str(ports.queue),
                "--table-port",
                str(ports.table),
                "--cosmos-port",
                str(ports.cosmos),
                "--state-dir",
                str(tmp_path / "state"),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> object:
            if process.poll() is not None:
                raise AssertionError(f"devtools.run exited early:\n{log_file.read_text()}")
            try:
                return http_request("GET", f"http://127.0.0.1:{http_port}/api/health")
            except OSError:
                return None

        response = wait_until(healthy, timeout=180, interval=0.25, message="the health endpoint")
        assert response.status == 200, response.body
        report = response.json()
        assert report["status"] == "ok"
        assert {d["name"]: d["status"] for d in report["dependencies"]} == {
            "table": "ok",
            "queue": "ok",
            "blob": "ok",
            "cosmos": "ok",
        }
        assert all(d["latency_ms"] >= 0 for d in report["dependencies"])
        # The simulator is served over TLS (MSAL.js refuses an http authority), with the local CA.
        ca = tmp_path / "state" / "certs" / "local-ca.pem"
        sim_https = simulator.replace("http://", "https://")
        sim_health = requests.get(f"{sim_https}/_sim/health", verify=str(ca), timeout=30)
        assert sim_health.status_code == 200, "make run starts the simulator"
        # The console at `/`, with its CSP widened to the simulator's authority, and its /config.json.
        index = http_request("GET", f"http://127.0.0.1:{http_port}/")
        assert index.status == 200
        policy = {k.lower(): v for k, v in index.headers.items()}["content-security-policy"]
        assert sim_https in policy
        config = http_request("GET", f"http://127.0.0.1:{http_port}/config.json").json()
        assert config["authority"].startswith(f"{sim_https}/")
        assert config["redirectUri"] == f"http://127.0.0.1:{http_port}/redirect.html"
        assert f"Console: http://127.0.0.1:{http_port}/" in log_file.read_text()
        # Entra mode: the API refuses an anonymous call and accepts the developer token make run wrote.
        assert http_request("GET", f"http://127.0.0.1:{http_port}/api/events").status == 401
        token = (tmp_path / "state" / "api-token").read_text().strip()
        events = http_request(
            "GET", f"http://127.0.0.1:{http_port}/api/events", headers={"Authorization": f"Bearer {token}"}
        )
        assert events.status == 200, events.body
    finally:
        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=30)
    assert exit_code == 0, log_file.read_text()
    survivors = subprocess.run(
        ["pgrep", "-f", f"--blobPort {ports.blob}"], capture_output=True, text=True, check=False
    )
    assert survivors.stdout.strip() == "", "Ctrl-C must stop Azurite"
