"""`make run`'s wiring of the console sign-in (devtools/run.py): the simulator's settings switched to its
TLS address, the CA bundle, and the app registrations behind Entra mode and /config.json."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from devtools.certs import ensure_local_certificates
from devtools.run import (
    LOCAL_API_APP_ID_URI,
    LOCAL_API_CLIENT_ID,
    LOCAL_CONSOLE_CLIENT_ID,
    configure_sign_in,
    simulator_port,
    switch_to_https,
    write_ca_bundle,
    write_developer_token,
)
from devtools.simulator import SimulatorConfig, TenantSimulator

TENANT = "00000000-0000-0000-0000-0000000000aa"


def test_the_simulator_port_comes_from_a_loopback_microsoft_url() -> None:
    assert simulator_port({"M365_AUTHORITY_HOST": "http://127.0.0.1:7072"}) == 7072
    assert simulator_port({"GRAPH_BASE_URL": "http://localhost:7100/graph"}) == 7100
    assert simulator_port({"M365_AUTHORITY_HOST": "https://login.microsoftonline.com"}) is None
    assert simulator_port({}) is None


def test_every_setting_naming_the_simulator_moves_to_https_and_nothing_else() -> None:
    channels = [{"name": "teams", "type": "teams", "url": "http://127.0.0.1:7072/webhooks/teams"}]
    environ = {
        "M365_AUTHORITY_HOST": "http://127.0.0.1:7072",
        "GRAPH_BASE_URL": "http://localhost:7072/graph",
        "DEVOPS_BASE_URL": "http://127.0.0.1:7072/devops",
        "ALERT_CHANNELS": json.dumps(channels),
        "ALERT_LINK_BASE_URL": "http://127.0.0.1:7071/api",
        "OTHER": "http://127.0.0.1:70720/x",
    }
    changed = switch_to_https(environ, 7072)
    assert changed == ["ALERT_CHANNELS", "DEVOPS_BASE_URL", "GRAPH_BASE_URL", "M365_AUTHORITY_HOST"]
    assert environ["M365_AUTHORITY_HOST"] == "https://127.0.0.1:7072"
    assert environ["GRAPH_BASE_URL"] == "https://127.0.0.1:7072/graph"
    assert json.loads(environ["ALERT_CHANNELS"])[0]["url"] == "https://127.0.0.1:7072/webhooks/teams"
    assert environ["ALERT_LINK_BASE_URL"] == "http://127.0.0.1:7071/api"
    assert environ["OTHER"] == "http://127.0.0.1:70720/x"  # another port that merely starts alike


def test_the_ca_bundle_keeps_the_public_roots_and_adds_the_local_ca(tmp_path: Path) -> None:
    certificates = ensure_local_certificates(tmp_path / "certs")
    bundle = write_ca_bundle(certificates, {})
    text = bundle.read_text()
    assert certificates.ca_cert.read_text() in text
    assert text.count("BEGIN CERTIFICATE") > 10  # certifi's roots too
    roots = tmp_path / "corporate.pem"
    roots.write_text(certificates.ca_cert.read_text())
    own = write_ca_bundle(certificates, {"SSL_CERT_FILE": str(roots)}).read_text()
    assert own.count("BEGIN CERTIFICATE") == 2


@pytest.fixture
def simulator() -> Iterator[TenantSimulator]:
    config = SimulatorConfig(
        tenant_id=TENANT, events_per_day=10, epoch=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    sim = TenantSimulator(config).start()
    yield sim
    sim.stop()


def test_sign_in_defaults_name_the_registrations_the_simulator_knows(simulator: TenantSimulator) -> None:
    environ = {"M365_TENANT_ID": TENANT}
    sign_in = configure_sign_in(environ, simulator, 7071)
    assert environ["API_AUTH_MODE"] == "entra"
    assert environ["API_CLIENT_ID"] == LOCAL_API_CLIENT_ID
    assert environ["API_AUDIENCE"] == LOCAL_API_APP_ID_URI
    assert environ["CONSOLE_CLIENT_ID"] == LOCAL_CONSOLE_CLIENT_ID
    assert environ["CONSOLE_AUTHORITY"] == f"{simulator.base_url}/{TENANT}/v2.0"
    assert environ["CONSOLE_SCOPES"] == f"{LOCAL_API_APP_ID_URI}/access_as_user"
    assert sign_in.api.client_id == LOCAL_API_CLIENT_ID
    registered = simulator.app.identity._spa(LOCAL_CONSOLE_CLIENT_ID)
    assert registered is not None
    assert set(registered.redirect_uris) == {
        "http://127.0.0.1:7071/redirect.html",
        "http://localhost:7071/redirect.html",
        "http://127.0.0.1:7071/",
        "http://localhost:7071/",
    }


def test_settings_already_given_win(simulator: TenantSimulator) -> None:
    environ = {"API_AUTH_MODE": "keys", "API_CLIENT_ID": "11111111-2222-3333-4444-555555555555"}
    sign_in = configure_sign_in(environ, simulator, 7071)
    assert environ["API_AUTH_MODE"] == "keys"
    assert sign_in.api.client_id == "11111111-2222-3333-4444-555555555555"
    assert sign_in.api.app_id_uri == LOCAL_API_APP_ID_URI


def test_the_developer_token_has_every_role_and_only_its_owner_reads_it(
    simulator: TenantSimulator, tmp_path: Path
) -> None:
    sign_in = configure_sign_in({"M365_TENANT_ID": TENANT}, simulator, 7071)
    path = write_developer_token(simulator, sign_in.api, tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    claims = jwt.decode(path.read_text().strip(), options={"verify_signature": False})
    assert claims["aud"] == LOCAL_API_CLIENT_ID
    assert set(claims["roles"]) == {"AOC.Reader", "AOC.Analyst", "AOC.Admin", "AOC.Privacy"}
    assert claims["iss"] == f"{simulator.base_url}/{TENANT}/v2.0"
