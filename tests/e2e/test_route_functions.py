"""Every declared route through the local Functions host, in function-key mode: each is a function of
its own (name, route, method, auth level) that the generic code serves; a key given as `?code=` works
as the header does; and a function switched off with `AzureWebJobs.<name>.Disabled` is gone while every
other route still answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.services import PROJECT_ROOT
from shared.api.catalog import api_routes
from shared.api.routing import WRITE_METHODS
from tests.support.host_process import FUNCTION_KEY, MASTER_KEY, HostProcess, http_request

SWITCHED_OFF = "get_event_raw"
VALID_IDS = {
    "event": "entra_audit:Directory_1_AB12C_1",
    "alert": "alert-" + "a" * 40,
    "rule": "custom.rule",
    "queue": "notify",
    "saved search": "srch-" + "a" * 32,
    "object": "00000000-0000-0000-0000-000000000001",
    "suppression": "sup-" + "a" * 40,
    "service principal": "00000000-0000-4000-8000-000000000001",
    "exception": "exc-" + "a" * 40,
    "dataset": "no_such_dataset",  # of the grammar, no source of that id: 404
}
# Routes whose id selects events rather than naming one thing: an id no event holds answers an empty 200.
LISTS_BY_ID = {"object_history"}


@pytest.fixture(scope="module")
def host(app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    settings = {
        **app_environment,
        "M365_TENANT_ID": str(uuid.uuid4()),  # a tenant without data: nothing here is found or changed
        "API_CONTINUATION_SECRET": "route-functions-secret-0123456789",
        "PROBE_ENABLED": "false",
        f"AzureWebJobs.{SWITCHED_OFF}.Disabled": "true",
    }
    work_dir: Path = tmp_path_factory.mktemp("route-functions")
    process = HostProcess(app_dir=PROJECT_ROOT, work_dir=work_dir, environment=settings).start(timeout=60)
    yield process
    process.stop()


def test_the_host_runs_one_function_per_declared_route(host: HostProcess) -> None:
    status = http_request(
        "GET", f"{host.base_url}/admin/host/status", headers={"x-functions-key": MASTER_KEY}
    )
    assert status.status == 200
    document = status.json()
    assert document["disabled"] == [SWITCHED_OFF]
    declared = {r.name for r in api_routes()}
    assert declared - set(document["functions"]) == {SWITCHED_OFF}
    assert "cors_preflight" in document["functions"]


def test_every_route_answers_through_its_function(host: HostProcess) -> None:
    """Reads answer 200 (or a 404 problem for an id that names nothing); writes are sent with a
    malformed Idempotency-Key, so each answers a 400 from the generic code and changes nothing. The
    problem's `instance` is the path the route was called with."""
    answered = 0
    for route in api_routes():
        if route.name == SWITCHED_OFF:
            continue
        params = {p.name: VALID_IDS[p.what] for p in route.path_params}
        path = route.instance(params)
        headers = {"x-functions-key": FUNCTION_KEY}
        if route.method in WRITE_METHODS:
            headers |= {"Content-Type": "application/json", "Idempotency-Key": "x" * 101}
            result = http_request(route.method, f"{host.base_url}{path}", body=b"{}", headers=headers)
            assert result.status == 400, (route.name, result.body[:300])
            assert result.json()["errors"][0]["field"] == "Idempotency-Key", route.name
            assert result.json()["instance"] == path
        elif route.path_params and route.name not in LISTS_BY_ID:
            result = http_request(route.method, f"{host.base_url}{path}", headers=headers)
            assert result.status == 404, (route.name, result.body[:300])
            assert result.headers["Content-Type"].startswith("application/problem+json")
            assert result.json()["instance"] == path
        else:
            # The function key as ?code=, which the host reads and the route's query model never sees.
            result = http_request(route.method, f"{host.base_url}{path}?code={FUNCTION_KEY}")
            expected = (200, 503) if route.name == "health" else (200,)
            assert result.status in expected, (route.name, result.body[:300])
        answered += 1
    assert answered == len(api_routes()) - 1


def test_the_host_checks_the_key_of_every_protected_route_and_none_of_a_public_one(host: HostProcess) -> None:
    for route in api_routes():
        if route.name == SWITCHED_OFF:
            continue
        path = route.instance({p.name: VALID_IDS[p.what] for p in route.path_params})
        result = http_request(route.method, f"{host.base_url}{path}", body=b"{}" if route.body else None)
        if route.role is None:
            assert result.status in (200, 503), route.name
        else:
            assert result.status == 401, route.name


def test_a_switched_off_function_is_gone_and_its_neighbours_stay(host: HostProcess) -> None:
    key = {"x-functions-key": FUNCTION_KEY}
    event = VALID_IDS["event"]
    gone = http_request("GET", f"{host.base_url}/api/events/{event}/raw", headers=key)
    # The host's answer, not the app's: no GET function for the path (only the CORS preflight's OPTIONS).
    assert (gone.status, "GET" in gone.headers.get("Allow", "")) in ((404, False), (405, False))
    assert "instance" not in json.loads(gone.body or b"{}")
    kept = http_request("GET", f"{host.base_url}/api/events/{event}", headers=key)
    assert kept.status == 404
    assert json.loads(kept.body)["type"].endswith("/not-found")  # the app's answer: no such event
