"""`make run`: local services, the tenant simulator, bootstrap, then the local Functions host on
http://127.0.0.1:7071, which also serves the admin console (web/dist) at `/`.

With the Microsoft base URLs on this machine (local.settings.json.example), the tenant simulator plays
Microsoft 365 and Entra ID. It is served over TLS with the project's local CA, because MSAL.js refuses
an http authority: every setting that points at it is switched to https, and the app trusts the local
CA through SSL_CERT_FILE (the public roots plus the local CA). The API then runs in Entra mode against
the simulator's issuer (API_AUTH_MODE=entra), the console's app registration is registered in the
simulated tenant with this host's redirect URI, and /config.json tells the console where to sign in.
Settings already given (environment or local.settings.json) win over these defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sys
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devtools.certs import LocalCertificates
from devtools.host.__main__ import configure_logging, serve
from devtools.host.app import HostOptions, LocalFunctionsHost
from devtools.host.config import apply_local_settings, load_local_settings
from devtools.services import (
    LOCAL_STATE_DIR,
    PROJECT_ROOT,
    LocalServices,
    ServiceError,
    ServicePorts,
    ensure_port_free,
)
from devtools.simulator import DEFAULT_TENANT_ID, SimulatorConfig, TenantSimulator
from devtools.simulator.signing import AOC_APP_ROLES, ApiRegistration

DEFAULT_PORTS = ServicePorts()
SIMULATOR_URL_SETTINGS = ("M365_AUTHORITY_HOST", "GRAPH_BASE_URL", "MANAGEMENT_BASE_URL")
# The app registrations of the simulated tenant under `make run` (fixed, so bookmarks and tokens in
# notes keep their meaning between runs). The API's App ID URI is the one the README's setup uses.
LOCAL_API_CLIENT_ID = "6a8f3d2c-1b4e-4f70-9c5d-2e8b7a1f0c16"
LOCAL_API_APP_ID_URI = "api://aoc-functions"
LOCAL_CONSOLE_CLIENT_ID = "c915e0a1-7d2b-4e36-8f4a-0b5c9d1e2f16"
DEVELOPER_TOKEN_HOURS = 12


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.run", description=__doc__)
    parser.add_argument("--port", type=int, default=7071, help="HTTP port of the Functions host")
    parser.add_argument("--blob-port", type=int, default=DEFAULT_PORTS.blob)
    parser.add_argument("--queue-port", type=int, default=DEFAULT_PORTS.queue)
    parser.add_argument("--table-port", type=int, default=DEFAULT_PORTS.table)
    parser.add_argument("--cosmos-port", type=int, default=DEFAULT_PORTS.cosmos)
    parser.add_argument("--state-dir", type=Path, default=LOCAL_STATE_DIR, help="data, logs, certificates")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def simulator_port(environ: MutableMapping[str, str]) -> int | None:
    """The port of the simulator the app's Microsoft endpoints point at, if they point at this machine."""
    loopback = [urlsplit(environ[n]) for n in SIMULATOR_URL_SETTINGS if environ.get(n)]
    loopback = [u for u in loopback if u.hostname in ("127.0.0.1", "localhost")]
    if not loopback:
        return None
    return loopback[0].port or (443 if loopback[0].scheme == "https" else 80)


def switch_to_https(environ: MutableMapping[str, str], port: int) -> list[str]:
    """Point every setting that names the simulator (http://127.0.0.1:<port> or localhost) at its TLS
    address: base URLs, DEVOPS_BASE_URL, the webhook URLs inside ALERT_CHANNELS. Returns the names."""
    plain = re.compile(rf"http://(?:127\.0\.0\.1|localhost):{port}(?![0-9])", re.IGNORECASE)
    changed = []
    for name, value in list(environ.items()):
        updated = plain.sub(f"https://127.0.0.1:{port}", value)
        if updated != value:
            environ[name] = updated
            changed.append(name)
    return sorted(changed)


def write_ca_bundle(certificates: LocalCertificates, environ: MutableMapping[str, str]) -> Path:
    """The CA file the app verifies TLS with: the roots it used before (SSL_CERT_FILE, else certifi's)
    plus the local CA that signed the simulator's certificate."""
    import certifi

    bundle = certificates.ca_cert.parent / "ca-bundle.pem"
    previous = environ.get("SSL_CERT_FILE")
    roots = Path(previous) if previous and Path(previous).is_file() and Path(previous) != bundle else None
    text = (roots or Path(certifi.where())).read_text(encoding="utf-8")
    bundle.write_text(text.rstrip("\n") + "\n" + certificates.ca_cert.read_text(encoding="utf-8"))
    return bundle


@dataclass(frozen=True)
class ConsoleSignIn:
    api: ApiRegistration
    console_client_id: str
    authority: str


def configure_sign_in(
    environ: MutableMapping[str, str], simulator: TenantSimulator, port: int
) -> ConsoleSignIn:
    """Entra mode against the simulator: the API's and the console's app registrations, registered in
    the simulated tenant, and the settings that name them (a setting already given wins)."""
    tenant = environ.get("M365_TENANT_ID") or simulator.config.tenant_id
    environ.setdefault("API_AUTH_MODE", "entra")
    environ.setdefault("API_CLIENT_ID", LOCAL_API_CLIENT_ID)
    environ.setdefault("API_AUDIENCE", LOCAL_API_APP_ID_URI)
    audience = environ["API_AUDIENCE"].strip()
    client_id = environ["API_CLIENT_ID"].strip()
    app_id_uri = audience if audience.lower() not in (client_id.lower(), "") else f"api://{client_id}"
    api = ApiRegistration(client_id=client_id, app_id_uri=app_id_uri)
    environ.setdefault("CONSOLE_CLIENT_ID", LOCAL_CONSOLE_CLIENT_ID)
    environ.setdefault("CONSOLE_AUTHORITY", f"{simulator.base_url}/{tenant}/v2.0")
    environ.setdefault("CONSOLE_SCOPES", f"{app_id_uri}/access_as_user")
    simulator.register_api(api)
    # Sign-in answers at /redirect.html; sign-out returns to / (a registered URI, as Entra requires).
    redirect_uris = [
        f"http://{host}:{port}{path}"
        for host in ("127.0.0.1", "localhost")
        for path in ("/redirect.html", "/")
    ]
    simulator.register_spa(environ["CONSOLE_CLIENT_ID"], redirect_uris)
    return ConsoleSignIn(
        api=api, console_client_id=environ["CONSOLE_CLIENT_ID"], authority=environ["CONSOLE_AUTHORITY"]
    )


def write_developer_token(simulator: TenantSimulator, api: ApiRegistration, state_dir: Path) -> Path:
    """A bearer token with every app role for curl (README, "Calling it"), valid for this run only:
    the simulator signs with a key it makes when it starts. The file is readable by its owner only."""
    token = simulator.issue_api_token(
        api,
        list(AOC_APP_ROLES),
        name="developer@contoso.com",
        lifetime_seconds=DEVELOPER_TOKEN_HOURS * 3600,
    )
    path = state_dir / "api-token"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as token_file:
        token_file.write(token + "\n")
    return path


def start_simulator(
    port: int, certificates: LocalCertificates, environ: MutableMapping[str, str]
) -> TenantSimulator:
    ensure_port_free(port, "tenant simulator")
    now = time.time()
    config = SimulatorConfig(
        tenant_id=environ.get("M365_TENANT_ID") or DEFAULT_TENANT_ID,
        epoch=dt.datetime.fromtimestamp(now - 86400, dt.UTC),  # a day of activity that just ended
        started_at_unix=now - 86400,  # the simulator's clock reads real time, as the app's does
    )
    return TenantSimulator(config, port=port, certificates=certificates).start()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)

    settings_file = PROJECT_ROOT / "local.settings.json"
    if not settings_file.exists():
        shutil.copy(PROJECT_ROOT / "local.settings.json.example", settings_file)
        print(f"created {settings_file.name} from local.settings.json.example")

    ports = ServicePorts(
        blob=args.blob_port, queue=args.queue_port, table=args.table_port, cosmos=args.cosmos_port
    )
    services = LocalServices(ports=ports, state_dir=args.state_dir)
    try:
        ensure_port_free(args.port, "local Functions host")
        services.start()
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    simulator: TenantSimulator | None = None
    try:
        # local.settings.json into the environment now (the environment wins, as under func start), so
        # that what follows sees the app's settings before the host loads the app.
        apply_local_settings(load_local_settings(settings_file).values, os.environ)
        # A local.settings.json made before the activity datasets (issue 19) lacks these: the timer's
        # binding needs its schedule to load, and the timer stays off as in Azure.
        os.environ.setdefault("DATASETS_REFRESH_SCHEDULE", "0 */5 * * * *")
        os.environ.setdefault("AzureWebJobs.refresh_datasets.Disabled", "true")
        if ports != DEFAULT_PORTS or args.state_dir != LOCAL_STATE_DIR:
            # Non-default ports: point the app at them. The environment wins over local.settings.json.
            os.environ.update(services.app_environment())
        assert services.certificates is not None
        sign_in: ConsoleSignIn | None = None
        port = simulator_port(os.environ)
        if port is not None:
            simulator = start_simulator(port, services.certificates, os.environ)
            switch_to_https(os.environ, port)
            os.environ["SSL_CERT_FILE"] = str(write_ca_bundle(services.certificates, os.environ))
            sign_in = configure_sign_in(os.environ, simulator, args.port)
        host = LocalFunctionsHost(HostOptions(app_dir=PROJECT_ROOT, port=args.port))
        # The host has loaded the app; the bootstrap reads the same settings.
        from shared.platform.bootstrap import bootstrap
        from shared.platform.clients import get_clients

        bootstrap(get_clients())
        print(f"Azurite: blob {ports.blob}, queue {ports.queue}, table {ports.table}")
        print(f"cosmosdb-server: {services.cosmos_endpoint}")
        if simulator is not None and sign_in is not None:
            print(
                f"tenant simulator: {simulator.base_url}  (remove the 127.0.0.1 base URLs to use Microsoft)"
            )
            print(
                f"  TLS, local CA {services.certificates.ca_cert} (the app trusts it through SSL_CERT_FILE)"
            )
            token = write_developer_token(simulator, sign_in.api, args.state_dir)
            mode = os.environ.get("API_AUTH_MODE", "").strip().lower()
            print(f"API: API_AUTH_MODE={mode}; the console signs in at {sign_in.authority}")
            if mode == "entra":
                print(
                    f'  curl: -H "Authorization: Bearer $(cat {_shown(token)})"  (every role, this run only)'
                )
            else:
                print("  warning: API_AUTH_MODE is not entra, so the API refuses the console's tokens")
        print(f"Health: http://127.0.0.1:{args.port}/api/health  (Ctrl-C stops everything)")
        if host.console is not None:
            print(f"Console: http://127.0.0.1:{args.port}/", flush=True)
            if services.certificates is not None and sign_in is not None:
                print(
                    "  its sign-in page is the simulator's, signed by the local CA: let your browser proceed "
                    f"past its certificate warning once, or import {_shown(services.certificates.ca_cert)}",
                    flush=True,
                )
        else:
            print("Console: not built (web/dist is missing): run `make install`", flush=True)
        serve(host)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if simulator is not None:
            simulator.stop()
        services.stop()
    return 0


def _shown(path: Path) -> str:
    """The path relative to the project when it is inside it, for a shorter command to copy."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
