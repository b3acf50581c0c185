#!/usr/bin/env python3
"""Write the admin console's config.json into the built site (web/dist) before azd deploys it.

The web service's prepackage hook in azure.yaml runs this after `azd provision`, with the azd
environment's values in the environment:

  SERVICE_API_URI     the Function App, https://func-aoc-<token>.azurewebsites.net (main.bicep output)
  SERVICE_WEB_URI     the Static Web App's origin, https://<name>.azurestaticapps.net (main.bicep output)
  CONSOLE_TENANT_ID   the tenant whose tokens the API accepts (main.bicep output; AZURE_TENANT_ID else)
  M365_CLOUD          global (default), usgov, dod or china: picks the sign-in authority's host
  CONSOLE_CLIENT_ID   the console's (SPA) app registration, from console_app_registrations.py
  CONSOLE_SCOPES      optional, space- or comma-separated; default API_AUDIENCE + "/access_as_user"
  CONSOLE_AUTHORITY   optional override of https://<cloud authority host>/<tenant>/v2.0
  CONSOLE_API_BASE_URL  optional override of SERVICE_API_URI + "/api"

It writes two files into the folder:

- config.json, the console's runtime configuration (the contract the local host also serves):
  {"apiBaseUrl", "clientId", "authority", "knownAuthorities", "scopes", "redirectUri", "version"}.
  Nothing in it is a secret: a SPA's client id, tenant and scopes are public by design.
- staticwebapp.config.json, the site's configuration with its Content-Security-Policy widened: the
  Function App's origin and the authority's origin are added to connect-src, and the authority's
  origin to frame-src (MSAL's silent renewal uses a hidden iframe). Sources already there stay once.

Without CONSOLE_CLIENT_ID (the first `azd up`, before the app registrations exist, because their redirect
URI needs the site's host name) config.json is still written, with an empty clientId: the console then
says it cannot sign in. `--strict` makes that an error instead.

Standard library only, so the hook runs with any Python 3.11+ on the deploying machine, without the
project's virtual environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DEFAULT_DIST = WEB / "dist"
SWA_CONFIG_FILE = "staticwebapp.config.json"
CONFIG_FILE = "config.json"
BUILD_TIMEOUT_SECONDS = 600

# The sign-in authority host of each M365_CLOUD (shared/m365/cloud.py's authority_host; a unit test keeps
# the two equal).
CLOUD_AUTHORITY_HOSTS: dict[str, str] = {
    "global": "https://login.microsoftonline.com",
    "usgov": "https://login.microsoftonline.us",
    "dod": "https://login.microsoftonline.us",
    "china": "https://login.chinacloudapi.cn",
}
DEFAULT_CLOUD = "global"  # main.parameters.json: ${M365_CLOUD=global}
CONFIG_KEYS = ("apiBaseUrl", "clientId", "authority", "knownAuthorities", "scopes", "redirectUri", "version")

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TENANT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
)
_SCOPE = re.compile(r"[!-~]{1,512}")  # printable ASCII, no blanks


class ConfigError(ValueError):
    """A value the deploy cannot build a working console configuration from."""


@dataclass(frozen=True)
class ConsoleDeployConfig:
    api_base_url: str
    site_origin: str
    client_id: str
    authority: str
    scopes: tuple[str, ...]
    version: str

    @property
    def api_origin(self) -> str:
        return _origin(self.api_base_url)

    @property
    def authority_origin(self) -> str:
        return _origin(self.authority)

    def document(self) -> dict[str, object]:
        """config.json, in the shape the console and the local host share."""
        return {
            "apiBaseUrl": self.api_base_url,
            "clientId": self.client_id,
            "authority": self.authority,
            "knownAuthorities": [urlsplit(self.authority).netloc],
            "scopes": list(self.scopes),
            "redirectUri": f"{self.site_origin}/redirect.html",
            "version": self.version,
        }


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _https_url(name: str, value: str, *, origin_only: bool) -> str:
    """`value` as an https URL without query, fragment or credentials (and without a path when
    `origin_only`), with no trailing slash; ConfigError otherwise."""
    url = value.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise ConfigError(f"{name} is not a URL: {value!r}") from exc
    del port
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"{name} must be an https URL, got {value!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{name} must not carry a query, fragment or credentials, got {value!r}")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise ConfigError(f"{name} holds blanks or control characters")
    if origin_only and parts.path:
        raise ConfigError(f"{name} must be an origin (https://host), got {value!r}")
    return url


def scope_list(console_scopes: str, api_audience: str) -> list[str]:
    """CONSOLE_SCOPES, or API_AUDIENCE + "/access_as_user" (AppSettings.console_scope_list's rule)."""
    scopes = [scope for scope in re.split(r"[\s,]+", console_scopes) if scope]
    audience = api_audience.strip().rstrip("/")
    return scopes or ([f"{audience}/access_as_user"] if audience else [])


def read_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The project's version ([project] version), as GET /api/version reports it."""
    with pyproject.open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def config_from_environment(env: Mapping[str, str], version: str) -> tuple[ConsoleDeployConfig, list[str]]:
    """The console's configuration from the azd environment, and warnings worth printing."""
    warnings: list[str] = []

    def get(name: str) -> str:
        return (env.get(name) or "").strip()

    if get("CONSOLE_API_BASE_URL"):
        api_base_url = _https_url("CONSOLE_API_BASE_URL", get("CONSOLE_API_BASE_URL"), origin_only=False)
    elif get("SERVICE_API_URI"):
        api_base_url = _https_url("SERVICE_API_URI", get("SERVICE_API_URI"), origin_only=True) + "/api"
    else:
        raise ConfigError("SERVICE_API_URI is not set: run `azd provision` first (it is a main.bicep output)")
    if not get("SERVICE_WEB_URI"):
        raise ConfigError("SERVICE_WEB_URI is not set: run `azd provision` first (it is a main.bicep output)")
    site_origin = _https_url("SERVICE_WEB_URI", get("SERVICE_WEB_URI"), origin_only=True)

    if get("CONSOLE_AUTHORITY"):
        authority = _https_url("CONSOLE_AUTHORITY", get("CONSOLE_AUTHORITY"), origin_only=False)
    else:
        cloud = (get("M365_CLOUD") or DEFAULT_CLOUD).lower()
        if cloud not in CLOUD_AUTHORITY_HOSTS:
            raise ConfigError(f"M365_CLOUD {cloud!r} is not one of {', '.join(CLOUD_AUTHORITY_HOSTS)}")
        tenant = get("CONSOLE_TENANT_ID") or get("AZURE_TENANT_ID")
        if not tenant:
            raise ConfigError("CONSOLE_TENANT_ID is not set: run `azd provision` first (a main.bicep output)")
        if not _TENANT.fullmatch(tenant):
            raise ConfigError(f"CONSOLE_TENANT_ID must be a tenant id (GUID) or domain, got {tenant!r}")
        authority = f"{CLOUD_AUTHORITY_HOSTS[cloud]}/{tenant}/v2.0"

    client_id = get("CONSOLE_CLIENT_ID")
    if client_id and not _GUID.fullmatch(client_id):
        raise ConfigError("CONSOLE_CLIENT_ID must be the console's Application (client) ID, a GUID")
    if not client_id:
        warnings.append(
            "CONSOLE_CLIENT_ID is not set, so the console cannot sign anyone in yet. Register the apps "
            "(README, 'Static Web App front end'), then `azd env set CONSOLE_CLIENT_ID <id>` and "
            "`azd deploy web`."
        )

    scopes = scope_list(get("CONSOLE_SCOPES"), get("API_AUDIENCE"))
    for scope in scopes:
        if not _SCOPE.fullmatch(scope):
            raise ConfigError(f"not a usable scope: {scope!r}")
    if not scopes:
        warnings.append(
            "no scopes: set API_AUDIENCE (the API's Application ID URI) or CONSOLE_SCOPES, "
            "then `azd deploy web`"
        )
    if (get("API_AUTH_MODE") or "keys").lower() != "entra":
        warnings.append(
            "API_AUTH_MODE is not entra: the API refuses the console's bearer tokens. Run "
            "`azd env set API_AUTH_MODE entra` (with API_AUDIENCE and API_CLIENT_ID) and `azd provision`."
        )
    config = ConsoleDeployConfig(
        api_base_url=api_base_url,
        site_origin=site_origin,
        client_id=client_id.lower(),
        authority=authority,
        scopes=tuple(scopes),
        version=version,
    )
    return config, warnings


def add_csp_sources(policy: str, additions: Mapping[str, Sequence[str]]) -> str:
    """The policy with each source in `additions` appended to its directive (created from default-src's
    sources when missing). Sources already present are not repeated. The same rule as
    devtools.host.static_site.add_csp_sources, which serves the local console (a test compares them)."""
    directives: list[tuple[str, list[str]]] = []
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives.append((words[0].lower(), words[1:]))
    defaults = next((values for name, values in directives if name == "default-src"), ["'self'"])
    for name, sources in additions.items():
        existing = next((values for directive, values in directives if directive == name), None)
        if existing is None:
            existing = [s for s in defaults if s != "'none'"]
            directives.append((name, existing))
        for source in sources:
            if source and source not in existing:
                existing.append(source)
    return "; ".join(" ".join([name, *values]) for name, values in directives)


def widen_site_config(site_config: dict[str, object], config: ConsoleDeployConfig) -> dict[str, object]:
    """staticwebapp.config.json with every Content-Security-Policy (global and per route) allowing the
    API and the sign-in authority."""
    additions = {
        "connect-src": [config.api_origin, config.authority_origin],
        "frame-src": [config.authority_origin],
    }
    widened: dict[str, object] = json.loads(json.dumps(site_config))  # a deep copy
    header_maps: list[dict[str, object]] = []
    global_headers = widened.get("globalHeaders")
    if isinstance(global_headers, dict):
        header_maps.append(global_headers)
    routes = widened.get("routes")
    for route in routes if isinstance(routes, list) else []:
        if isinstance(route, dict) and isinstance(route.get("headers"), dict):
            header_maps.append(route["headers"])
    found = False
    for headers in header_maps:
        for name, value in list(headers.items()):
            if name.lower() == "content-security-policy" and isinstance(value, str):
                headers[name] = add_csp_sources(value, additions)
                found = True
    if not found:
        raise ConfigError(f"{SWA_CONFIG_FILE} sets no Content-Security-Policy to widen")
    return widened


def _write_json(path: Path, document: object) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def write_site(dist: Path, config: ConsoleDeployConfig, source_config: Path | None = None) -> None:
    """config.json and the widened staticwebapp.config.json into `dist`."""
    if not (dist / "index.html").is_file():
        raise ConfigError(f"{dist} holds no index.html: build the console first (cd web && node build.mjs)")
    source = source_config or (
        dist / SWA_CONFIG_FILE if (dist / SWA_CONFIG_FILE).is_file() else WEB / SWA_CONFIG_FILE
    )
    try:
        site_config = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from exc
    if not isinstance(site_config, dict):
        raise ConfigError(f"{source} is not a JSON object")
    _write_json(dist / SWA_CONFIG_FILE, widen_site_config(site_config, config))
    _write_json(dist / CONFIG_FILE, config.document())


def build(web: Path = WEB) -> None:
    """`node build.mjs` in web/ (esbuild from web/node_modules: `npm ci` first when it is missing)."""
    if not (web / "node_modules").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=web,
            check=True,
            timeout=BUILD_TIMEOUT_SECONDS,
        )
    subprocess.run(["node", "build.mjs"], cwd=web, check=True, timeout=BUILD_TIMEOUT_SECONDS)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--dist", type=Path, default=DEFAULT_DIST, help="the built console (default web/dist)"
    )
    parser.add_argument("--build", action="store_true", help="build the console first (node build.mjs)")
    parser.add_argument("--strict", action="store_true", help="fail when CONSOLE_CLIENT_ID is not set")
    args = parser.parse_args(argv)
    environment = os.environ if env is None else env
    try:
        config, warnings = config_from_environment(environment, read_version())
        if args.strict and not config.client_id:
            raise ConfigError("CONSOLE_CLIENT_ID is not set (--strict)")
        if args.build:
            build()
        write_site(args.dist, config)
    except (ConfigError, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"console config: error: {exc}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"console config: warning: {warning}", file=sys.stderr)
    print(f"console config: wrote {args.dist / CONFIG_FILE} for {config.site_origin}")
    print(f"  API       {config.api_base_url}")
    print(f"  authority {config.authority}")
    print(f"  client id {config.client_id or '(not set)'}")
    print(f"  scopes    {' '.join(config.scopes) or '(none)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
