#!/usr/bin/env python3
"""Create or update the two Entra ID app registrations the admin console signs in with.

- **The API** ("AOC Functions API" unless --api-app-id names an existing one): the Application ID URI
  (default api://<its client id>), the delegated scope `access_as_user` the console asks for, the app
  roles the API checks (AOC.Reader, AOC.Analyst, AOC.Admin, AOC.Privacy: shared/api/auth.py `Role`), v2.0
  access tokens, and the console pre-authorized for the scope (so users see no consent prompt).
- **The console** ("AOC Functions console" unless --spa-app-id names one): a single-page application
  whose redirect URIs are the Static Web App's <origin>/redirect.html, where sign-in answers, and
  <origin>/, where sign-out returns (Entra accepts only a registered URI as post_logout_redirect_uri);
  with --local also http://127.0.0.1:7071/redirect.html and http://127.0.0.1:7071/ for `make run`
  against a real tenant. It requires the API's scope.
- A service principal (enterprise application) for each, so users and groups can be assigned the roles.

Idempotent: every object is read first and written only where it differs from what is wanted. Existing
scopes, roles, redirect URIs and pre-authorizations are kept (their ids too); only missing ones are added.
`--dry-run` reads and reports without writing.

Microsoft Graph is called with httpx and a token from the Azure CLI (`az account get-access-token`), as
the signed-in user: an Application Administrator or Cloud Application Administrator, or the owner of
both registrations. Run it with the project's virtual environment, after `azd provision` (the redirect
URI needs the Static Web App's host name, an output of the provision):

    .venv/bin/python infra/scripts/console_app_registrations.py \
        --console-url "$(azd env get-value SERVICE_WEB_URI)"

It ends with the `azd env set` commands that point the API and the console at the registrations
(`--set-azd-env` runs them).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.api.auth import Role  # noqa: E402  (the roles the API checks)
from shared.m365.cloud import CLOUDS, parse_cloud_name  # noqa: E402

SCOPE_VALUE = "access_as_user"
DEFAULT_API_NAME = "AOC Functions API"
DEFAULT_SPA_NAME = "AOC Functions console"
LOCAL_REDIRECT_URI = "http://127.0.0.1:7071/redirect.html"
LOCAL_SIGNED_OUT_URI = "http://127.0.0.1:7071/"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
AZ_TIMEOUT_SECONDS = 60
# New objects reach every Graph replica within seconds; reads right after a create may 404 until then.
REPLICATION_RETRIES = 6
REPLICATION_DELAY_SECONDS = 5.0
MAX_THROTTLE_WAIT_SECONDS = 60.0

ROLE_TEXT: dict[str, tuple[str, str]] = {
    Role.READER.value: ("Reader", "Read events, facets, exports, raw records, alerts, rules and status."),
    Role.ANALYST.value: ("Analyst", "Reader, plus tags, comments, bulk tags and alert triage."),
    Role.ADMIN.value: ("Admin", "Analyst, plus rule changes, rule tests, probe runs and the audit log."),
    Role.PRIVACY.value: ("Privacy", "See the services and operations marked sensitive."),
}
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_APP_SELECT = "id,appId,displayName,identifierUris,api,appRoles,spa,requiredResourceAccess"


class RegistrationError(Exception):
    """Something the script cannot do; the message says what to do about it."""


class Application(BaseModel):
    """The parts of a Graph `application` this script reads; everything else is left alone."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    id: str
    app_id: str = Field(alias="appId")
    display_name: str = Field(default="", alias="displayName")
    identifier_uris: list[str] = Field(default_factory=list, alias="identifierUris")
    api: dict[str, Any] | None = None
    app_roles: list[dict[str, Any]] = Field(default_factory=list, alias="appRoles")
    spa: dict[str, Any] | None = None
    required_resource_access: list[dict[str, Any]] = Field(
        default_factory=list, alias="requiredResourceAccess"
    )


@dataclass
class Report:
    """What was done (or, in a dry run, would be)."""

    changes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def add(self, text: str) -> None:
        self.changes.append(("(dry run) " if self.dry_run else "") + text)


class Graph:
    """Microsoft Graph v1.0 over httpx with a bearer token; writes are skipped in a dry run."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/v1.0",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=TIMEOUT,
            transport=transport,
        )
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def request(
        self, method: str, path: str, json: Any = None, *, retry_not_found: bool = False
    ) -> httpx.Response:
        attempts = 0
        while True:
            attempts += 1
            response = self._client.request(method, path, json=json)
            if response.status_code in (429, 503, 504) and attempts <= REPLICATION_RETRIES:
                self._sleep(_retry_after(response))
                continue
            if response.status_code == 404 and retry_not_found and attempts <= REPLICATION_RETRIES:
                self._sleep(REPLICATION_DELAY_SECONDS)
                continue
            return response

    def wait(self, seconds: float) -> None:
        self._sleep(seconds)

    def get(self, path: str, *, retry_not_found: bool = False) -> httpx.Response:
        return self.request("GET", path, retry_not_found=retry_not_found)


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", "5")), 1.0), MAX_THROTTLE_WAIT_SECONDS)
    except ValueError:
        return 5.0


def _raise_for_graph(response: httpx.Response, doing: str) -> None:
    """RegistrationError with Graph's error code and message (never the request's headers)."""
    if response.is_success:
        return
    try:
        error = response.json().get("error", {})
        detail = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except ValueError:
        detail = response.text[:300]
    hint = ""
    if response.status_code in (401, 403):
        hint = (
            " (sign in with `az login --tenant <tenant id>` as an Application Administrator or Cloud "
            "Application Administrator, or as the owner of both registrations)"
        )
    raise RegistrationError(f"{doing}: Graph answered {response.status_code} {detail}{hint}")


def _odata_string(value: str) -> str:
    return value.replace("'", "''")


# --- Finding or creating the registrations ----------------------------------------------------------


def find_or_create_application(
    graph: Graph, report: Report, *, app_id: str | None, display_name: str, kind: str
) -> Application | None:
    """The application with `app_id`, or the one named `display_name` (created when there is none).
    None only in a dry run that would create it."""
    if app_id:
        if not _GUID.fullmatch(app_id):
            raise RegistrationError(f"the {kind}'s application (client) id must be a GUID, got {app_id!r}")
        response = graph.get(f"/applications(appId='{app_id}')?$select={_APP_SELECT}")
        if response.status_code == 404:
            raise RegistrationError(f"no application with appId {app_id} in this tenant ({kind})")
        _raise_for_graph(response, f"reading the {kind} registration")
        return Application.model_validate(response.json())
    name_filter = quote(f"displayName eq '{_odata_string(display_name)}'", safe="")
    response = graph.get(f"/applications?$filter={name_filter}&$select={_APP_SELECT}")
    _raise_for_graph(response, f"looking up the {kind} registration")
    found = [Application.model_validate(item) for item in response.json().get("value", [])]
    if len(found) > 1:
        ids = ", ".join(app.app_id for app in found)
        raise RegistrationError(
            f"{len(found)} applications are named {display_name!r} ({ids}): pick one with "
            f"--{'api' if kind == 'API' else 'spa'}-app-id"
        )
    if found:
        return found[0]
    report.add(f"create the {kind} app registration {display_name!r}")
    if report.dry_run:
        return None
    response = graph.request(
        "POST", "/applications", {"displayName": display_name, "signInAudience": "AzureADMyOrg"}
    )
    _raise_for_graph(response, f"creating the {kind} registration")
    return Application.model_validate(response.json())


def ensure_service_principal(graph: Graph, report: Report, app: Application, kind: str) -> None:
    response = graph.get(f"/servicePrincipals(appId='{app.app_id}')?$select=id", retry_not_found=False)
    if response.status_code == 404:
        report.add(f"create the {kind}'s service principal (enterprise application)")
        if report.dry_run:
            return
        for _ in range(REPLICATION_RETRIES):
            created = graph.request("POST", "/servicePrincipals", {"appId": app.app_id})
            # Right after the application is created, Graph may not know its appId yet (400 or 404).
            if created.status_code not in (400, 404):
                break
            graph.wait(REPLICATION_DELAY_SECONDS)
        _raise_for_graph(created, f"creating the {kind}'s service principal")
        return
    _raise_for_graph(response, f"reading the {kind}'s service principal")


# --- What the API registration must hold --------------------------------------------------------------


def _scope_definition() -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "value": SCOPE_VALUE,
        "type": "User",
        "isEnabled": True,
        "adminConsentDisplayName": "Use AOC Functions as the signed-in user",
        "adminConsentDescription": "Lets the admin console call the AOC Functions API as the signed-in user, "
        "with the AOC app roles the user holds.",
        "userConsentDisplayName": "Use AOC Functions as you",
        "userConsentDescription": "Lets the admin console call the AOC Functions API as you.",
    }


def _role_definition(value: str) -> dict[str, Any]:
    name, description = ROLE_TEXT[value]
    return {
        "id": str(uuid.uuid4()),
        "value": value,
        "displayName": f"AOC {name}",
        "description": description,
        "allowedMemberTypes": ["User", "Application"],
        "isEnabled": True,
    }


def desired_api_changes(app: Application, app_id_uri: str | None) -> tuple[dict[str, Any], list[str]]:
    """The PATCH body for the API registration (empty when nothing is missing), and what it changes."""
    body: dict[str, Any] = {}
    notes: list[str] = []
    uri = app_id_uri or f"api://{app.app_id}"
    if uri not in app.identifier_uris:
        body["identifierUris"] = [*app.identifier_uris, uri]
        notes.append(f"Application ID URI {uri}")
    api = dict(app.api or {})
    scopes = [dict(scope) for scope in api.get("oauth2PermissionScopes") or []]
    scope = next((s for s in scopes if s.get("value") == SCOPE_VALUE), None)
    api_changed = False
    if scope is None:
        scopes.append(_scope_definition())
        notes.append(f"scope {SCOPE_VALUE}")
        api_changed = True
    elif not scope.get("isEnabled", True):
        scope["isEnabled"] = True
        notes.append(f"scope {SCOPE_VALUE} enabled again")
        api_changed = True
    if api.get("requestedAccessTokenVersion") is None and not api.get("oauth2PermissionScopes"):
        # A registration that exposes nothing yet gets v2.0 tokens (audience: the client id). One that
        # already exposes scopes keeps its token version: the API accepts v1.0 and v2.0 alike.
        api["requestedAccessTokenVersion"] = 2
        notes.append("v2.0 access tokens")
        api_changed = True
    if api_changed:
        api["oauth2PermissionScopes"] = scopes
        body["api"] = api
    roles = [dict(role) for role in app.app_roles]
    have = {role.get("value") for role in roles}
    missing = [value for value in ROLE_TEXT if value not in have]
    if missing:
        body["appRoles"] = roles + [_role_definition(value) for value in missing]
        notes.append("app roles " + ", ".join(missing))
    return body, notes


def scope_id(app: Application) -> str | None:
    for scope in (app.api or {}).get("oauth2PermissionScopes") or []:
        if scope.get("value") == SCOPE_VALUE:
            return str(scope["id"])
    return None


def desired_preauthorization(
    api_app: Application, spa_app_id: str, permission_id: str
) -> dict[str, Any] | None:
    """The PATCH body that pre-authorizes the console for the scope, or None when it already is."""
    api = dict(api_app.api or {})
    entries = [dict(entry) for entry in api.get("preAuthorizedApplications") or []]
    entry = next((e for e in entries if str(e.get("appId", "")).lower() == spa_app_id.lower()), None)
    if entry is None:
        entries.append({"appId": spa_app_id, "delegatedPermissionIds": [permission_id]})
    elif permission_id in (entry.get("delegatedPermissionIds") or []):
        return None
    else:
        entry["delegatedPermissionIds"] = [*(entry.get("delegatedPermissionIds") or []), permission_id]
    api["preAuthorizedApplications"] = entries
    return {"api": api}


# --- What the console registration must hold ----------------------------------------------------------


def desired_spa_changes(
    app: Application, redirect_uris: Sequence[str], api_app_id: str, permission_id: str | None
) -> tuple[dict[str, Any], list[str]]:
    body: dict[str, Any] = {}
    notes: list[str] = []
    spa = dict(app.spa or {})
    existing = list(spa.get("redirectUris") or [])
    missing = [uri for uri in redirect_uris if uri not in existing]
    if missing:
        spa["redirectUris"] = existing + missing
        body["spa"] = spa
        notes.append("SPA redirect URIs " + ", ".join(missing))
    if permission_id:
        access = [dict(entry) for entry in app.required_resource_access]
        entry = next(
            (e for e in access if str(e.get("resourceAppId", "")).lower() == api_app_id.lower()), None
        )
        wanted = {"id": permission_id, "type": "Scope"}
        if entry is None:
            access.append({"resourceAppId": api_app_id, "resourceAccess": [wanted]})
            body["requiredResourceAccess"] = access
            notes.append(f"API permission {SCOPE_VALUE}")
        elif not any(r.get("id") == permission_id for r in entry.get("resourceAccess") or []):
            entry["resourceAccess"] = [*(entry.get("resourceAccess") or []), wanted]
            body["requiredResourceAccess"] = access
            notes.append(f"API permission {SCOPE_VALUE}")
    return body, notes


def _patch(
    graph: Graph, report: Report, app: Application, body: dict[str, Any], notes: list[str], kind: str
) -> None:
    if not body:
        return
    report.add(f"update the {kind} registration: " + "; ".join(notes))
    if report.dry_run:
        return
    response = graph.request("PATCH", f"/applications/{app.id}", body, retry_not_found=True)
    _raise_for_graph(response, f"updating the {kind} registration")


def _reread(graph: Graph, app: Application, kind: str) -> Application:
    response = graph.get(f"/applications/{app.id}?$select={_APP_SELECT}", retry_not_found=True)
    _raise_for_graph(response, f"reading the {kind} registration again")
    return Application.model_validate(response.json())


# --- The whole run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    api_app_id: str | None
    api_app_id_uri: str | None
    spa_app_id: str | None
    report: Report

    def azd_settings(self) -> dict[str, str]:
        settings = {"API_AUTH_MODE": "entra"}
        if self.api_app_id_uri:
            settings["API_AUDIENCE"] = self.api_app_id_uri
        if self.api_app_id:
            settings["API_CLIENT_ID"] = self.api_app_id
        if self.spa_app_id:
            settings["CONSOLE_CLIENT_ID"] = self.spa_app_id
        return settings


def register(
    graph: Graph,
    *,
    redirect_uris: Sequence[str],
    api_app_id: str | None = None,
    api_name: str = DEFAULT_API_NAME,
    app_id_uri: str | None = None,
    spa_app_id: str | None = None,
    spa_name: str = DEFAULT_SPA_NAME,
    dry_run: bool = False,
) -> Outcome:
    report = Report(dry_run=dry_run)
    api_app = find_or_create_application(graph, report, app_id=api_app_id, display_name=api_name, kind="API")
    spa_app = find_or_create_application(
        graph, report, app_id=spa_app_id, display_name=spa_name, kind="console"
    )
    if api_app is None or spa_app is None:  # a dry run that would create one: the rest follows from it
        report.add(
            f"add scope {SCOPE_VALUE}, app roles {', '.join(ROLE_TEXT)}, redirect URIs, pre-authorization"
        )
        return Outcome(
            api_app.app_id if api_app else None,
            (app_id_uri or (f"api://{api_app.app_id}" if api_app else None)),
            spa_app.app_id if spa_app else None,
            report,
        )
    body, notes = desired_api_changes(api_app, app_id_uri)
    _patch(graph, report, api_app, body, notes, "API")
    if body and not dry_run:
        api_app = _reread(graph, api_app, "API")
    permission_id = scope_id(api_app)
    spa_body, spa_notes = desired_spa_changes(spa_app, redirect_uris, api_app.app_id, permission_id)
    _patch(graph, report, spa_app, spa_body, spa_notes, "console")
    if permission_id is not None:
        # A second write: Graph refuses a pre-authorization naming a scope added in the same request.
        preauth = desired_preauthorization(api_app, spa_app.app_id, permission_id)
        if preauth is not None:
            _patch(graph, report, api_app, preauth, [f"console pre-authorized for {SCOPE_VALUE}"], "API")
    ensure_service_principal(graph, report, api_app, "API")
    ensure_service_principal(graph, report, spa_app, "console")
    uri = app_id_uri or f"api://{api_app.app_id}"
    return Outcome(api_app.app_id, uri, spa_app.app_id, report)


def redirect_uris_for(console_url: str | None, local: bool) -> list[str]:
    uris: list[str] = []
    if console_url:
        parts = urlsplit(console_url.strip().rstrip("/"))
        if parts.scheme != "https" or not parts.hostname or parts.path or parts.query or parts.fragment:
            raise RegistrationError(f"--console-url must be the site's https origin, got {console_url!r}")
        uris += [f"https://{parts.netloc}/redirect.html", f"https://{parts.netloc}/"]
    if local:
        uris += [LOCAL_REDIRECT_URI, LOCAL_SIGNED_OUT_URI]
    if not uris:
        raise RegistrationError(
            "no redirect URI: pass --console-url https://<site>.azurestaticapps.net (azd env get-value "
            "SERVICE_WEB_URI) and/or --local"
        )
    return uris


def _run(command: Sequence[str]) -> str:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=AZ_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistrationError(f"{command[0]} failed: {exc}") from exc
    if result.returncode != 0:
        raise RegistrationError(f"{' '.join(command[:3])} failed: {result.stderr.strip()[:300]}")
    return result.stdout.strip()


def azure_cli_token(graph_resource: str) -> str:
    """A Graph token for the Azure CLI's signed-in user (never printed)."""
    token = _run(
        [
            "az",
            "account",
            "get-access-token",
            "--resource",
            graph_resource,
            "--query",
            "accessToken",
            "-o",
            "tsv",
        ]
    )
    if not token:
        raise RegistrationError("the Azure CLI returned no token: run az login --tenant <tenant id>")
    return token


def _azd_value(name: str) -> str | None:
    try:
        value = _run(["azd", "env", "get-value", name])
    except RegistrationError:
        return None
    return value or None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Create or update the console's and the API's Entra ID app registrations."
    )
    parser.add_argument("--console-url", help="the Static Web App origin (default: azd's SERVICE_WEB_URI)")
    parser.add_argument("--local", action="store_true", help=f"also register {LOCAL_REDIRECT_URI}")
    parser.add_argument("--api-app-id", help="an existing API registration (default: find or create by name)")
    parser.add_argument("--api-name", default=DEFAULT_API_NAME, help=f"default {DEFAULT_API_NAME!r}")
    parser.add_argument("--api-uri", help="the Application ID URI (default api://<API client id>)")
    parser.add_argument(
        "--spa-app-id", help="an existing console registration (default: find or create by name)"
    )
    parser.add_argument("--spa-name", default=DEFAULT_SPA_NAME, help=f"default {DEFAULT_SPA_NAME!r}")
    parser.add_argument(
        "--cloud", default=os.environ.get("M365_CLOUD") or "global", help="global, usgov, dod, china"
    )
    parser.add_argument("--dry-run", action="store_true", help="read and report, change nothing")
    parser.add_argument("--set-azd-env", action="store_true", help="run the azd env set commands at the end")
    args = parser.parse_args(argv)
    try:
        cloud = CLOUDS[parse_cloud_name(args.cloud)]
        console_url = args.console_url or os.environ.get("SERVICE_WEB_URI") or _azd_value("SERVICE_WEB_URI")
        uris = redirect_uris_for(console_url, args.local)
        graph = Graph(cloud.graph_base, azure_cli_token(cloud.graph_resource))
        try:
            outcome = register(
                graph,
                redirect_uris=uris,
                api_app_id=args.api_app_id,
                api_name=args.api_name,
                app_id_uri=args.api_uri,
                spa_app_id=args.spa_app_id,
                spa_name=args.spa_name,
                dry_run=args.dry_run,
            )
        finally:
            graph.close()
    except (RegistrationError, ValueError, ValidationError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for change in outcome.report.changes or ["nothing to change: both registrations are as wanted"]:
        print(f"  {change}")
    settings = outcome.azd_settings()
    print("\nPoint the API and the console at them, then provision and deploy:")
    for name, value in settings.items():
        print(f"  azd env set {name} {value}")
    print("  azd provision && azd deploy web")
    print(
        "Then assign users or groups to the AOC roles: Enterprise applications → "
        f"{args.api_name} → Users and groups."
    )
    if args.set_azd_env and not args.dry_run:
        for name, value in settings.items():
            try:
                _run(["azd", "env", "set", name, value])
            except RegistrationError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        print("azd environment updated.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
