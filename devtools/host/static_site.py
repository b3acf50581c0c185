"""The built console (web/dist) at `/` of the local host, as the Static Web App serves it in Azure.

A development convenience of `python -m devtools.host` and `make run`: function_app.py knows nothing of
it, and in Azure the Static Web App serves the same files. What the two share is
web/staticwebapp.config.json, read here as the SWA reads it:

- `globalHeaders` on every answer, with the Content-Security-Policy widened to this run's sign-in
  authority (the tenant simulator's origin changes per run; in Azure the file names Entra's);
- `routes[].headers` of the first route whose pattern matches (Cache-Control per kind of file);
- `navigationFallback`: a path that names no file is answered with the `rewrite` file (/index.html),
  unless an `exclude` pattern matches it (/api/*, /redirect.html, names with an extension), then 404;
- `mimeTypes` on top of the usual Content-Types.

`/config.json` is not a file: it is generated per request from the app's settings (CONSOLE_CLIENT_ID,
CONSOLE_AUTHORITY, CONSOLE_SCOPES) and the request's origin, in the shape the deploy writes in Azure.
When the authority is on this machine (the tenant simulator, over TLS with the local CA), it also
carries the authority's OpenID configuration as `authorityMetadata`, so MSAL does not fetch it: a
browser that does not trust the local CA then meets the simulator first in a top-level navigation (the
sign-in page), where it can accept the certificate, instead of in a fetch that fails silently.

Hostile paths never reach a file outside the folder: `..` or `.` segments, backslashes, NUL or control
characters (raw or percent-encoded) and undecodable escapes are 400; hidden names (a segment starting with
'.') and symbolic links out of the folder are 404.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import re
import ssl
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.datastructures import Headers

logger = logging.getLogger("devtools.host.static")

CONFIG_FILE = "staticwebapp.config.json"
RUNTIME_CONFIG_PATH = "/config.json"
MAX_PATH_LENGTH = 2048
SAFE_METHODS = ("GET", "HEAD")

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".webmanifest": "application/manifest+json",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BRACES = re.compile(r"\{([^{}]*)\}")
_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")

Response = tuple[int, Headers, bytes]


class _Route(BaseModel):
    model_config = ConfigDict(extra="ignore")
    route: str
    headers: dict[str, str] = Field(default_factory=dict)


class _Fallback(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rewrite: str
    exclude: list[str] = Field(default_factory=list)


class SwaConfig(BaseModel):
    """What the local host uses of staticwebapp.config.json (the SWA reads more: auth, networking)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    routes: list[_Route] = Field(default_factory=list)
    navigation_fallback: _Fallback | None = Field(default=None, alias="navigationFallback")
    global_headers: dict[str, str] = Field(default_factory=dict, alias="globalHeaders")
    mime_types: dict[str, str] = Field(default_factory=dict, alias="mimeTypes")

    @classmethod
    def load(cls, path: Path) -> SwaConfig:
        try:
            return cls.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise ValueError(f"{path}: not a usable staticwebapp.config.json: {exc}") from exc


def expand_braces(pattern: str) -> list[str]:
    """'*.{js,css}' -> ['*.js', '*.css'] (one level of braces, as the SWA's patterns use them)."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [
        variant for option in match.group(1).split(",") for variant in expand_braces(head + option + tail)
    ]


def route_matches(pattern: str, path: str) -> bool:
    """A SWA route or exclude pattern against a request path, case-insensitively. '*' spans '/'."""
    path = path.lower()
    for variant in expand_braces(pattern.lower()):
        if not variant.startswith(("/", "*")):
            variant = "/" + variant
        if fnmatch.fnmatchcase(path, variant):
            return True
    return False


def add_csp_sources(policy: str, additions: Mapping[str, list[str]]) -> str:
    """The policy with each source in `additions` appended to its directive (which is created from
    default-src's sources when missing). Sources already present are not repeated."""
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


def origin_of(url: str) -> str | None:
    """'https://127.0.0.1:7072/tenant/v2.0' -> 'https://127.0.0.1:7072'."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


class HostilePath(ValueError):
    """The request path is not one a browser sends for a file: 400."""


def safe_segments(raw_path: str) -> list[str]:
    """The decoded path segments of `raw_path` (the request target's path, still percent-encoded), or
    HostilePath. Empty segments (from '//' or a trailing '/') are dropped."""
    if len(raw_path) > MAX_PATH_LENGTH:
        raise HostilePath("the path is too long")
    if not raw_path.startswith("/"):
        raise HostilePath("the path must start with '/'")
    try:
        decoded = unquote(raw_path, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise HostilePath("the path is not UTF-8") from exc
    for text in (raw_path, decoded):
        if "\\" in text or _CONTROL.search(text):
            raise HostilePath("the path holds a backslash or a control character")
    segments = [s for s in decoded.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise HostilePath("the path holds a '.' or '..' segment")
    return segments


@dataclass(frozen=True)
class ConsoleConfig:
    """The console's /config.json, as the deploy writes it in Azure (docs: the console contract)."""

    client_id: str
    authority: str
    scopes: list[str]
    api_base_url: str = "/api"
    version: str = ""
    known_authorities: list[str] = field(default_factory=list)
    authority_metadata: dict[str, Any] | None = None

    @property
    def authority_origin(self) -> str | None:
        return origin_of(self.authority)

    def document(self, site_origin: str) -> dict[str, Any]:
        known = self.known_authorities or [urlsplit(self.authority).netloc]
        return {
            "apiBaseUrl": self.api_base_url,
            "clientId": self.client_id,
            "authority": self.authority,
            "knownAuthorities": known,
            "scopes": self.scopes,
            "redirectUri": f"{site_origin}/redirect.html",
            "version": self.version,
            **({"authorityMetadata": self.authority_metadata} if self.authority_metadata else {}),
        }


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
METADATA_TIMEOUT_SECONDS = 5.0
_metadata: dict[str, dict[str, Any]] = {}


def loopback_authority_metadata(authority: str) -> dict[str, Any] | None:
    """The OpenID configuration of an authority on this machine (fetched once; None for any other
    authority, or while it does not answer). TLS is verified with the default trust store, which honours
    SSL_CERT_FILE (the local CA under `make run`)."""
    parts = urlsplit(authority)
    if parts.scheme != "https" or parts.hostname not in LOOPBACK_HOSTS:
        return None
    if authority in _metadata:
        return _metadata[authority]
    url = f"{authority.rstrip('/')}/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(  # noqa: S310 - an https URL on this machine, checked above
            url, timeout=METADATA_TIMEOUT_SECONDS, context=ssl.create_default_context()
        ) as response:
            document = json.loads(response.read(1 << 20))
    except (OSError, ValueError) as exc:
        logger.warning("the sign-in authority's metadata (%s) did not load: %s", url, exc)
        return None
    if not isinstance(document, dict) or not isinstance(document.get("authorization_endpoint"), str):
        logger.warning("the sign-in authority's metadata (%s) is not an OpenID configuration", url)
        return None
    _metadata[authority] = document
    return document


class ConsoleNotConfigured(Exception):
    """CONSOLE_CLIENT_ID or CONSOLE_AUTHORITY is missing, or the settings do not load."""


def console_config_from_settings(api_base_url: str = "/api") -> ConsoleConfig:
    """The console's configuration from the app's settings (read once per process, as the app does)."""
    from shared.api.version_api import APP_VERSION
    from shared.platform.settings import get_settings

    try:
        settings = get_settings()
    except ValueError as exc:
        raise ConsoleNotConfigured(f"the app's settings do not load: {exc}") from exc
    client_id = (settings.console_client_id or "").strip()
    authority = (settings.console_authority or "").strip().rstrip("/")
    if not client_id or not authority:
        raise ConsoleNotConfigured(
            "the console's sign-in is not configured: set CONSOLE_CLIENT_ID (the console's app "
            "registration) and CONSOLE_AUTHORITY (https://<authority host>/<tenant id>/v2.0); "
            "`make run` sets both for the tenant simulator"
        )
    return ConsoleConfig(
        client_id=client_id,
        authority=authority,
        scopes=settings.console_scope_list,
        api_base_url=api_base_url,
        version=APP_VERSION,
        authority_metadata=loopback_authority_metadata(authority),
    )


@dataclass
class _CachedFile:
    mtime_ns: int
    size: int
    body: bytes
    etag: str


class StaticSite:
    """Answers GET and HEAD for a folder of built files, with the SWA configuration's headers."""

    def __init__(
        self,
        root: Path,
        config: SwaConfig,
        console_config: Callable[[], ConsoleConfig],
    ) -> None:
        self.root = root.resolve()
        self.config = config
        self._console_config = console_config
        self._cache: dict[Path, _CachedFile] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, root: Path, console_config: Callable[[], ConsoleConfig]) -> StaticSite:
        """The built folder; its staticwebapp.config.json (the build copies it), else web/'s own."""
        candidates = [root / CONFIG_FILE, root.parent / CONFIG_FILE]
        path = next((p for p in candidates if p.is_file()), None)
        config = SwaConfig.load(path) if path is not None else SwaConfig()
        return cls(root, config, console_config)

    # -- headers ----------------------------------------------------------------------------------
    def _authority_origin(self) -> str | None:
        try:
            return self._console_config().authority_origin
        except ConsoleNotConfigured:
            return None

    def _headers_for(self, path: str) -> Headers:
        headers = Headers()
        for name, value in self.config.global_headers.items():
            headers[name] = value
        for route in self.config.routes:
            if route_matches(route.route, path):
                for name, value in route.headers.items():
                    headers[name] = value  # the route's header wins over the global one
                break
        policy = headers.get("Content-Security-Policy")
        origin = self._authority_origin()
        if policy and origin:
            headers["Content-Security-Policy"] = add_csp_sources(
                policy, {"connect-src": [origin], "frame-src": [origin]}
            )
        return headers

    def _content_type(self, name: str) -> str:
        suffix = Path(name).suffix.lower()
        configured = self.config.mime_types.get(suffix)
        if configured:
            return configured
        return CONTENT_TYPES.get(suffix, DEFAULT_CONTENT_TYPE)

    # -- files ------------------------------------------------------------------------------------
    def _file(self, segments: list[str]) -> Path | None:
        """The regular file the segments name inside the root, or None. Hidden names never match."""
        if any(s.startswith(".") for s in segments):
            return None
        candidate = self.root.joinpath(*segments) if segments else self.root
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(self.root):
            return None  # a symbolic link out of the folder
        if resolved.is_dir():
            index = resolved / "index.html"
            return index if index.is_file() and index.resolve().is_relative_to(self.root) else None
        return resolved if resolved.is_file() else None

    def _read(self, path: Path) -> _CachedFile:
        stat = path.stat()
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and (cached.mtime_ns, cached.size) == (stat.st_mtime_ns, stat.st_size):
                return cached
        body = path.read_bytes()
        entry = _CachedFile(stat.st_mtime_ns, len(body), body, _etag(body))
        with self._lock:
            self._cache[path] = entry
        return entry

    def _fallback_target(self, path: str) -> Path | None:
        fallback = self.config.navigation_fallback
        if fallback is None or any(route_matches(p, path) for p in fallback.exclude):
            return None
        try:
            segments = safe_segments("/" + fallback.rewrite.lstrip("/"))
        except HostilePath:
            return None
        return self._file(segments)

    # -- answers ----------------------------------------------------------------------------------
    def serve(self, method: str, url: str, request_headers: Mapping[str, str]) -> Response:
        raw_path = urlsplit(url).path or "/"
        try:
            segments = safe_segments(raw_path)
        except HostilePath as exc:
            return self._problem(HTTPStatus.BAD_REQUEST, str(exc))
        path = "/" + "/".join(segments)
        if method not in SAFE_METHODS:
            status, headers, body = self._problem(
                HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here"
            )
            headers["Allow"] = ", ".join(SAFE_METHODS)
            return status, headers, body
        if path.lower() == RUNTIME_CONFIG_PATH:
            return self._runtime_config(url, request_headers)
        target = self._file(segments)
        if target is None:
            target = self._fallback_target(path)
            if target is None:
                return self._problem(HTTPStatus.NOT_FOUND, f"no file {path}")
            served_as = "/" + target.relative_to(self.root).as_posix()
        else:
            served_as = "/" + target.relative_to(self.root).as_posix()
        entry = self._read(target)
        headers = self._headers_for(served_as)
        headers["Content-Type"] = self._content_type(target.name)
        headers["ETag"] = entry.etag
        if _etag_matches(request_headers, entry.etag):
            return HTTPStatus.NOT_MODIFIED.value, headers, b""
        return HTTPStatus.OK.value, headers, entry.body

    def _runtime_config(self, url: str, request_headers: Mapping[str, str]) -> Response:
        try:
            config = self._console_config()
        except ConsoleNotConfigured as exc:
            return self._problem(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        site_origin = _request_origin(url, request_headers)
        body = json.dumps(config.document(site_origin), indent=2).encode("utf-8") + b"\n"
        headers = self._headers_for(RUNTIME_CONFIG_PATH)
        headers["Content-Type"] = "application/json"
        headers["Cache-Control"] = "no-cache"
        etag = _etag(body)
        headers["ETag"] = etag
        if _etag_matches(request_headers, etag):
            return HTTPStatus.NOT_MODIFIED.value, headers, b""
        return HTTPStatus.OK.value, headers, body

    def _problem(self, status: HTTPStatus, detail: str) -> Response:
        headers = self._headers_for("/")
        headers["Content-Type"] = "application/problem+json"
        headers["Cache-Control"] = "no-store"
        body = {"status": status.value, "title": status.phrase, "detail": detail}
        return status.value, headers, json.dumps(body).encode("utf-8")


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _etag_matches(request_headers: Mapping[str, str], etag: str) -> bool:
    value = next((v for k, v in request_headers.items() if k.lower() == "if-none-match"), None)
    if value is None:
        return False
    candidates = {c.strip().removeprefix("W/") for c in value.split(",")}
    return "*" in candidates or etag in candidates


def _request_origin(url: str, request_headers: Mapping[str, str]) -> str:
    """http://<Host> of the request (the local host speaks plain http): the console's own origin."""
    host = next((v for k, v in request_headers.items() if k.lower() == "host"), None)
    if host is None or not _HOST_HEADER.fullmatch(host):
        host = urlsplit(url).netloc
    if not _HOST_HEADER.fullmatch(host):
        host = "127.0.0.1"
    return f"http://{host}"
