"""`import function_app` touches no network, and every Blueprint folder registers."""

from __future__ import annotations

import os
import subprocess
import sys

import azure.functions as func

from devtools.services import PROJECT_ROOT

BLUEPRINT_PACKAGES = (
    "probe_timer",
    "ingest_worker",
    "alert_worker",
    "queue_consumer",
    "query_api",
    "datasets_timer",
    "governance_worker",
)


def test_import_function_app_needs_no_services() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobs", "COSMOS_"))}
    # Unroutable endpoints: any connection attempt at import time would hang or fail loudly.
    env.update(
        {
            "AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=x;AccountKey=eA==;"
            "QueueEndpoint=http://127.0.0.1:9/x;BlobEndpoint=http://127.0.0.1:9/x;"
            "TableEndpoint=http://127.0.0.1:9/x;",
            "COSMOS_ENDPOINT": "https://127.0.0.1:9/",
        }
    )
    # A hang (a connection attempt at import time) ends at the subprocess timeout, a hang guard only.
    result = subprocess.run(
        [sys.executable, "-c", "import function_app; print(len(function_app.app.get_functions()))"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 1


def test_function_app_registers_one_blueprint_per_folder() -> None:
    import importlib

    import function_app

    names = [f.get_function_name() for f in function_app.app.get_functions()]
    for package in BLUEPRINT_PACKAGES:
        blueprint = importlib.import_module(package).bp
        assert isinstance(blueprint, func.Blueprint), package
        for builder in blueprint._function_builders:
            assert builder._function.get_function_name() in names, package
    assert "health" in names
    assert len(names) == len(set(names))
