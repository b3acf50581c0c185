"""Small HTTP clients for tests that talk to the tenant simulator directly: tokens and Graph listings."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import requests

from devtools.simulator import SimulatorConfig, TenantSimulator
from devtools.simulator.timefmt import parse_time

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def simulator_at(epoch: dt.datetime, sim_offset_seconds: float, **overrides: Any) -> TenantSimulator:
    """A started simulator on a free port whose sim clock reads epoch + sim_offset_seconds now."""
    values: dict[str, Any] = {"epoch": epoch, "seed": 11, "events_per_day": 2000}
    values.update(overrides)
    speed = float(values.get("speed", 1.0))
    values["started_at_unix"] = time.time() - sim_offset_seconds / speed
    return TenantSimulator(SimulatorConfig(**values)).start()


def client_token(sim: TenantSimulator, scope: str = GRAPH_SCOPE) -> str:
    """An app-only access token from the simulator's token endpoint (client credentials)."""
    response = requests.post(
        f"{sim.authority}/oauth2/v2.0/token",
        data={
            "client_id": "aoc-app",
            "client_secret": "s3cret",
            "grant_type": "client_credentials",
            "scope": scope,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def sim_time_us(text: str) -> int:
    """An ISO or Graph timestamp in microseconds."""
    return parse_time(text, require_zone=True)[0]


def graph_records(sim: TenantSimulator, path: str, time_field: str, lo: str, hi: str) -> list[dict[str, Any]]:
    """Every record of a Graph listing with lo <= time <= hi, following @odata.nextLink."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {client_token(sim)}"
    response = session.get(
        f"{sim.graph_base_url}/v1.0/{path}",
        params={"$filter": f"{time_field} ge {lo} and {time_field} le {hi}", "$top": "50"},
        timeout=30,
    )
    values: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        values.extend(body["value"])
        if "@odata.nextLink" not in body:
            return values
        response = session.get(body["@odata.nextLink"], timeout=30)
