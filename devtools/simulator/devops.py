"""A fake Azure DevOps Services endpoint: "Runs - Run Pipeline", with the real service's rejections.

`POST /devops/{organization}/{project}/_apis/pipelines/{pipelineId}/runs?api-version=7.1` queues a run
and answers the Run JSON. Credentials: `Authorization: Basic base64(user:PAT)` with the configured PAT
(any user name), or `Authorization: Bearer <token>` minted by the simulator's token endpoint for
`499b84ac-1321-427f-aa17-267ca6975798/.default`. Bad credentials get 401 with `X-TFS-ServiceError`
TF400813; a forced reject mode (`reject(mode)`) answers every call with the 203 HTML sign-in page,
401, or 403 (valid credentials without permission). DevOps calls take no part in the random Graph and
Management faults; `devops_server_error_rate` (default 0) has its own deterministic counter.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from devtools.simulator.config import SimulatorConfig
from devtools.simulator.directory import guid
from devtools.simulator.faults import unit
from devtools.simulator.responses import Response, json_response
from devtools.simulator.routing import ApiRequest
from devtools.simulator.timefmt import from_us, graph_time, iso

# The Azure DevOps application id: tokens for `{DEVOPS_RESOURCE}/.default` call the DevOps REST APIs.
DEVOPS_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
DEVOPS_SCOPE = f"{DEVOPS_RESOURCE}/.default"
REJECT_MODES = ("signin", "unauthorized", "forbidden")
DEFAULT_REF_NAME = "refs/heads/main"
TF400813 = "TF400813: The user '' is not authorized to access this resource."
# The Runs resource: preview in 6.x, released in 7.0 and 7.1, 7.2 only as a preview; nothing newer.
LATEST_API_VERSION = (7, 2)
_API_VERSION = re.compile(r"^(\d+)\.(\d+)(-preview(?:\.\d+)?)?$", re.IGNORECASE)
_WEB_API = "Microsoft.VisualStudio.Services.WebApi"
_SIGNIN_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Azure DevOps Services | Sign In</title>
</head>
<body>
<div class="signin-container">
<h1>Azure DevOps</h1>
<p>You need to sign in to access this resource.</p>
<a id="signin"
   href="https://app.vssps.visualstudio.com/_signin?realm=dev.azure.com&amp;reply_to={reply}">Sign in</a>
</div>
</body>
</html>
"""


def tfs_service_error(message: str) -> str:
    """`message` as X-TFS-ServiceError carries it: .NET UrlEncode ('+' for spaces, lowercase hex)."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote_plus(message, safe=""))


def devops_error(status: int, message: str, type_key: str, namespace: str, **headers: str) -> Response:
    """The Azure DevOps error document: {"$id","innerException","message","typeName","typeKey",...}."""
    document = {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"{namespace}.{type_key}, {namespace}",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    }
    return json_response(status, document, **headers)


def parse_api_version(value: str | None) -> str | Response:
    """The api-version when the Runs resource serves it, else the 400 response the service sends."""
    if value is None or not value.strip():
        return devops_error(
            400,
            'No api-version was supplied for the "POST" request. The version must be supplied either as part '
            'of the Accept header (e.g. "application/json; api-version=1.0") or as a query parameter (e.g. '
            "'?api-version=1.0').",
            "VssVersionNotSpecifiedException",
            _WEB_API,
        )
    value = value.strip()
    match = _API_VERSION.match(value)
    if match is None:
        return devops_error(
            400,
            f"The specified api-version '{value}' is not valid. Use a version such as '7.1'.",
            "VssInvalidApiVersionException",
            _WEB_API,
        )
    version, preview = (int(match.group(1)), int(match.group(2))), match.group(3) is not None
    if version > LATEST_API_VERSION:
        return devops_error(
            400,
            f"The requested REST API version of {value} is out of range for this server. The latest REST API "
            f"version this server supports is {LATEST_API_VERSION[0]}.{LATEST_API_VERSION[1]}.",
            "VssVersionOutOfRangeException",
            _WEB_API,
        )
    if version < (6, 0):
        return devops_error(
            400,
            f"The requested REST API version of {value} is not supported by the pipelines Runs resource; it "
            "was introduced in 6.0-preview.1.",
            "VssVersionOutOfRangeException",
            _WEB_API,
        )
    if not preview and (version < (7, 0) or version == LATEST_API_VERSION):
        base = f"{version[0]}.{version[1]}"
        return devops_error(
            400,
            f'The requested version "{base}" of the resource is under preview. The -preview flag must be '
            f'supplied in the api-version for such requests. For example: "{base}-preview"',
            "VssInvalidPreviewVersionException",
            _WEB_API,
        )
    return value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


@dataclass(frozen=True)
class _Credential:
    scheme: str  # "none", "basic", "bearer" or the unsupported scheme's name
    identity: str | None  # who the credential proves, None when it proves nobody


class DevOpsService:
    """State and request handling of the fake Azure DevOps organization(s). Thread-safe."""

    def __init__(self, config: SimulatorConfig, bearer_identity: Callable[[str], str | None]) -> None:
        self.config = config
        self._bearer_identity = bearer_identity
        self._pipelines = dict(config.devops_pipelines)
        self._lock = threading.Lock()
        self._reject_mode: str | None = None
        self._runs: list[dict[str, Any]] = []
        self._attempts: list[dict[str, Any]] = []
        self._run_names: dict[tuple[int, str], int] = {}
        self._calls = 0

    # ------------------------------------------------------------------------------------------
    @property
    def reject_mode(self) -> str | None:
        return self._reject_mode

    def reject(self, mode: str | None) -> None:
        """Answer every DevOps call with `mode` ("signin", "unauthorized", "forbidden") until None."""
        if mode is not None and mode not in REJECT_MODES:
            raise ValueError(f"mode must be one of {', '.join(REJECT_MODES)} or null, got {mode!r}")
        with self._lock:
            self._reject_mode = mode

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(json.dumps(run)) for run in self._runs]

    def attempts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(attempt) for attempt in self._attempts]

    # ------------------------------------------------------------------------------------------
    def route(self, request: ApiRequest, segments: list[str]) -> Response:
        """The router for /devops/{segments}: `handle`, recording whether the credentials were accepted."""
        response, accepted = self.handle(
            request.method,
            request.path,
            segments,
            request.query,
            request.headers,
            request.body,
            base_url=request.base_url,
            now_us=request.now_us(),
        )
        request.entry["authorized"] = accepted
        return response

    def handle(
        self,
        method: str,
        path: str,
        segments: list[str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        *,
        base_url: str,
        now_us: int,
    ) -> tuple[Response, bool]:
        """(the response, whether the credentials were accepted) for a call to /devops/{segments}."""
        credential = self._credential(_header(headers, "Authorization"))
        attempt: dict[str, Any] = {
            "method": method,
            "path": path,
            "organization": segments[0] if segments else None,
            "project": segments[1] if len(segments) > 1 else None,
            "pipeline_id": _pipeline_id(segments),
            "api_version": None,
            "auth": credential.scheme,
            "credential_valid": credential.identity is not None,
            "reject_mode": None,
            "status": 0,
            "run_id": None,
            "sim_time": iso(now_us),
            "real_time": time.time(),
        }
        with self._lock:
            mode = self._reject_mode
        attempt["reject_mode"] = mode
        accepted = False
        if mode == "signin":
            response = self._signin_page(base_url, path)
        elif mode == "unauthorized" or credential.identity is None:
            response = self._unauthorized(base_url)
        elif mode == "forbidden":
            response = self._forbidden(credential.identity, segments)
        else:
            accepted = True
            response = self._serve(
                method, segments, query, headers, body, credential, attempt, base_url, now_us
            )
        attempt["status"] = response.status
        with self._lock:
            self._attempts.append(attempt)
        return response, accepted

    def _credential(self, header: str | None) -> _Credential:
        if header is None or not header.strip():
            return _Credential("none", None)
        scheme, _, value = header.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                return _Credential("basic", None)
            user, separator, pat = decoded.partition(":")
            valid = separator and hmac.compare_digest(pat.encode(), self.config.devops_pat.encode())
            return _Credential("basic", (user or "PAT user") if valid else None)
        if scheme == "bearer":
            return _Credential("bearer", self._bearer_identity(value) if value else None)
        return _Credential(scheme or "none", None)

    # ------------------------------------------------------------------------------------------
    # Rejections, as the real service sends them
    # ------------------------------------------------------------------------------------------
    def _signin_page(self, base_url: str, path: str) -> Response:
        reply = quote(f"{base_url}{path}", safe="")
        body = _SIGNIN_PAGE.replace("{reply}", reply).encode("utf-8")
        return Response(
            203,
            body,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("X-TFS-ProcessId", guid_for("process", self.config.seed)),
                ("X-TFS-FedAuthRealm", "https://app.vssps.visualstudio.com/"),
                ("X-TFS-FedAuthIssuer", "https://app.vssps.visualstudio.com/"),
                ("X-VSS-AuthorizationEndpoint", "https://app.vssps.visualstudio.com/"),
                ("X-TFS-FedAuthRedirect", f"https://app.vssps.visualstudio.com/_signin?reply_to={reply}"),
                ("X-VSS-ResourceTenant", self.config.tenant_id),
            ],
        )

    def _unauthorized(self, base_url: str) -> Response:
        response = devops_error(
            401,
            TF400813,
            "UnauthorizedRequestException",
            "Microsoft.TeamFoundation.Framework.Server",
            X_TFS_ServiceError=tfs_service_error(TF400813),
            X_TFS_ProcessId=guid_for("process", self.config.seed),
            X_VSS_ResourceTenant=self.config.tenant_id,
        )
        response.headers.extend(
            [
                (
                    "WWW-Authenticate",
                    f"Bearer authorization_uri=https://login.microsoftonline.com/{self.config.tenant_id}",
                ),
                ("WWW-Authenticate", f'Basic realm="{base_url}/devops/"'),
                ("WWW-Authenticate", "TFS-Federated"),
            ]
        )
        return response

    def _forbidden(self, identity: str, segments: list[str]) -> Response:
        pipeline = segments[4] if len(segments) > 4 else "?"
        project = segments[1] if len(segments) > 1 else "?"
        message = (
            f"TF215106: Access denied. {identity} needs Queue builds permissions for build pipeline "
            f"{pipeline} in team project {project} to perform the action. For more information, contact "
            "the Azure DevOps Server administrator."
        )
        return devops_error(
            403,
            message,
            "AccessDeniedException",
            "Microsoft.TeamFoundation.Build.WebApi",
            X_TFS_ServiceError=tfs_service_error(message),
        )

    # ------------------------------------------------------------------------------------------
    # Runs - Run Pipeline
    # ------------------------------------------------------------------------------------------
    def _serve(
        self,
        method: str,
        segments: list[str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        credential: _Credential,
        attempt: dict[str, Any],
        base_url: str,
        now_us: int,
    ) -> Response:
        lowered = [s.lower() for s in segments]
        if len(segments) == 5 and lowered[2:] == ["_apis", "pipelines", "runs"]:
            return _pipeline_not_found("A pipeline id is required: .../_apis/pipelines/{pipelineId}/runs.")
        if len(segments) != 6 or lowered[2:4] != ["_apis", "pipelines"] or lowered[5] != "runs":
            path = "/".join(segments)
            return devops_error(
                404,
                f"The resource '{path}' cannot be found. Check the organization, project and route.",
                "VssResourceNotFoundException",
                _WEB_API,
            )
        if method != "POST":
            return devops_error(
                405,
                f"The requested resource does not support http method '{method}'.",
                "VssMethodNotAllowedException",
                _WEB_API,
            )
        api_version = parse_api_version(_api_version(query, headers))
        if isinstance(api_version, Response):
            return api_version
        attempt["api_version"] = api_version
        organization, project, pipeline_text = segments[0], segments[1], segments[4]
        pipeline_id = _pipeline_id(segments)
        if pipeline_id is None or pipeline_id not in self._pipelines:
            return _pipeline_not_found(f"Pipeline with id {pipeline_text} not found in project {project}.")
        parameters = _run_parameters(body)
        if isinstance(parameters, Response):
            return parameters
        fault = self._server_error()
        if fault is not None:
            return fault
        resources = parameters.get("resources") or {}
        repositories = dict(resources.get("repositories") or {})
        self_repo = dict(repositories.get("self") or {})
        ref_name = self_repo.get("refName") or DEFAULT_REF_NAME
        template_parameters = dict(parameters.get("templateParameters") or {})
        name = self._pipelines[pipeline_id]
        with self._lock:
            run_id = len(self._runs) + 1
            day = from_us(now_us).strftime("%Y%m%d")
            sequence = self._run_names.get((pipeline_id, day), 0) + 1
            self._run_names[(pipeline_id, day)] = sequence
            repositories["self"] = {
                "repository": {"id": guid_for(f"repo:{organization}/{project}", self.config.seed),
                               "type": "azureReposGit"},
                "refName": ref_name,
                "version": self_repo.get("version") or _commit(self.config.seed, run_id),
            }  # fmt: skip
            echoed_resources = {**resources, "repositories": repositories}
            run = {
                "id": run_id,
                "name": f"{day}.{sequence}",
                "organization": organization,
                "project": project,
                "pipeline_id": pipeline_id,
                "pipeline_name": name,
                "refName": ref_name,
                "templateParameters": template_parameters,
                "resources": echoed_resources,
                "createdDate": graph_time(now_us),
                "api_version": api_version,
                "auth": credential.scheme,
                "identity": credential.identity,
            }
            self._runs.append(run)
        attempt["run_id"] = run_id
        document = _run_document(base_url, run, echoed_resources, template_parameters)
        return json_response(200, document, f"application/json; charset=utf-8; api-version={api_version}")

    def _server_error(self) -> Response | None:
        rate = self.config.devops_server_error_rate
        if rate <= 0:
            return None
        with self._lock:
            self._calls += 1
            counter = self._calls
        if unit(self.config.seed, "devops-call", counter) >= rate:
            return None
        if unit(self.config.seed, "devops-status", counter) < 0.5:
            activity = guid_for(f"activity:{counter}", self.config.seed)
            return devops_error(
                500,
                f"TF400898: An Internal Error Occurred. Activity Id: {activity}.",
                "VssServiceException",
                _WEB_API,
            )
        return devops_error(
            503,
            "TF400733: The request has been canceled: the service is temporarily unavailable.",
            "VssServiceUnavailableException",
            _WEB_API,
            Retry_After="1",
        )


def _api_version(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    for key, value in query.items():
        if key.lower() == "api-version":
            return value
    accept = _header(headers, "Accept") or ""
    match = re.search(r"api-version\s*=\s*([^;,\s]+)", accept, re.IGNORECASE)
    return match.group(1) if match else None


def _pipeline_id(segments: list[str]) -> int | None:
    """The {pipelineId} of {organization}/{project}/_apis/pipelines/{pipelineId}/runs, if numeric."""
    if len(segments) == 6 and re.fullmatch(r"[0-9]{1,9}", segments[4]):
        return int(segments[4])
    return None


def _pipeline_not_found(message: str) -> Response:
    return devops_error(404, message, "PipelineNotFoundException", "Microsoft.Azure.Pipelines.WebApi")


def _run_parameters(body: bytes) -> dict[str, Any] | Response:
    """The RunPipelineParameters document, or the 400 the service answers for it."""
    try:
        document = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict):
        return devops_error(
            400,
            "Value cannot be null.\r\nParameter name: runParameters",
            "ArgumentNullException",
            "System",
        )
    problems: list[str] = []
    resources = document.get("resources")
    if resources is not None and not isinstance(resources, dict):
        problems.append("resources must be an object")
    elif isinstance(resources, dict):
        repositories = resources.get("repositories")
        if repositories is not None and not isinstance(repositories, dict):
            problems.append("resources.repositories must be an object")
        elif isinstance(repositories, dict):
            self_repo = repositories.get("self")
            if self_repo is not None and not isinstance(self_repo, dict):
                problems.append("resources.repositories.self must be an object")
            elif isinstance(self_repo, dict) and not isinstance(self_repo.get("refName", ""), str):
                problems.append("resources.repositories.self.refName must be a string")
    template_parameters = document.get("templateParameters")
    if template_parameters is not None and not isinstance(template_parameters, dict):
        problems.append("templateParameters must be an object")
    if problems:
        return devops_error(
            400, f"Invalid run parameters: {'; '.join(problems)}.", "ArgumentException", "System"
        )
    return document


def _run_document(
    base_url: str, run: dict[str, Any], resources: dict[str, Any], template_parameters: dict[str, Any]
) -> dict[str, Any]:
    project_url = f"{base_url}/devops/{quote(run['organization'], safe='')}/{quote(run['project'], safe='')}"
    pipeline_id, run_id = run["pipeline_id"], run["id"]
    run_url = f"{project_url}/_apis/pipelines/{pipeline_id}/runs/{run_id}"
    pipeline_url = f"{project_url}/_apis/pipelines/{pipeline_id}?revision=1"
    return {
        "_links": {
            "self": {"href": run_url},
            "web": {"href": f"{project_url}/_build/results?buildId={run_id}"},
            "pipeline.web": {"href": f"{project_url}/_build/definition?definitionId={pipeline_id}"},
            "pipeline": {"href": pipeline_url},
        },
        "templateParameters": template_parameters,
        "pipeline": {
            "url": pipeline_url,
            "id": pipeline_id,
            "revision": 1,
            "name": run["pipeline_name"],
            "folder": "\\",
        },
        "state": "inProgress",
        "result": None,
        "createdDate": run["createdDate"],
        "url": run_url,
        "resources": resources,
        "id": run_id,
        "name": run["name"],
    }


def guid_for(name: str, seed: int) -> str:
    return guid(random.Random(f"{seed}:devops:{name}"))  # noqa: S311 - stable fake ids


def _commit(seed: int, run_id: int) -> str:
    return f"{int(unit(seed, 'commit', run_id) * 2**64):016x}" + f"{run_id:024x}"
