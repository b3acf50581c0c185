"""host.json, local.settings.json and host keys, read the way `func start` reads them."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_ROUTE_PREFIX = "api"
_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")
_SETTING_REF = re.compile(r"%([^%]+)%")


class HostConfigError(ValueError):
    """host.json, local.settings.json or a binding is not usable."""


def parse_timespan(value: str | int | float, *, field_name: str) -> float:
    """A host.json duration in seconds: 'hh:mm:ss', 'd.hh:mm:ss' or a number of milliseconds."""
    if isinstance(value, int | float):
        return float(value) / 1000.0
    match = _TIMESPAN.match(value.strip())
    if not match:
        raise HostConfigError(f"host.json {field_name}: '{value}' is not a TimeSpan (hh:mm:ss)")
    days = int(match.group("days") or 0)
    return days * 86400 + int(match.group("h")) * 3600 + int(match.group("m")) * 60 + float(match.group("s"))


@dataclass(frozen=True)
class QueueOptions:
    """extensions.queues, with the Functions host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: Literal["base64", "none"] = "base64"


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = DEFAULT_ROUTE_PREFIX
    queues: QueueOptions = field(default_factory=QueueOptions)


HOST_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"


def apply_host_overrides(document: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """App settings named `AzureFunctionsJobHost__path__to__key` override host.json, as in Azure."""
    for name, value in environ.items():
        if not name.startswith(HOST_OVERRIDE_PREFIX):
            continue
        path = name[len(HOST_OVERRIDE_PREFIX) :].split("__")
        node = document
        for part in path[:-1]:
            key = next((k for k in node if k.lower() == part.lower()), part)
            node = node.setdefault(key, {})
        leaf = next((k for k in node if k.lower() == path[-1].lower()), path[-1])
        node[leaf] = int(value) if value.isdigit() else value
    return document


def load_host_json(path: Path, environ: Mapping[str, str] | None = None) -> HostConfig:
    document = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    document = apply_host_overrides(document, os.environ if environ is None else environ)
    if str(document.get("version", "2.0")) != "2.0":
        raise HostConfigError(f"{path}: only host.json version 2.0 is supported")
    extensions = document.get("extensions") or {}
    http = extensions.get("http") or {}
    queues = extensions.get("queues") or {}
    route_prefix = http.get("routePrefix", DEFAULT_ROUTE_PREFIX)
    batch_size = int(queues.get("batchSize", 16))
    if not 1 <= batch_size <= 32:
        raise HostConfigError("host.json extensions.queues.batchSize must be between 1 and 32")
    encoding = str(queues.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise HostConfigError("host.json extensions.queues.messageEncoding must be base64 or none")
    options = QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
        max_polling_interval=parse_timespan(
            queues.get("maxPollingInterval", "00:01:00"), field_name="maxPollingInterval"
        ),
        visibility_timeout=parse_timespan(
            queues.get("visibilityTimeout", "00:00:00"), field_name="visibilityTimeout"
        ),
        max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
        message_encoding=encoding,  # type: ignore[arg-type]
    )
    if options.max_polling_interval < 0.1:
        raise HostConfigError("host.json extensions.queues.maxPollingInterval must be at least 100 ms")
    if options.max_dequeue_count < 1:
        raise HostConfigError("host.json extensions.queues.maxDequeueCount must be at least 1")
    return HostConfig(route_prefix=str(route_prefix).strip("/"), queues=options)


@dataclass(frozen=True)
class LocalSettings:
    values: dict[str, str]
    local_http_port: int | None = None


def load_local_settings(path: Path) -> LocalSettings:
    if not path.is_file():
        return LocalSettings(values={})
    document = json.loads(path.read_text(encoding="utf-8"))
    values = {str(k): "" if v is None else str(v) for k, v in (document.get("Values") or {}).items()}
    port = (document.get("Host") or {}).get("LocalHttpPort")
    return LocalSettings(values=values, local_http_port=int(port) if port else None)


def apply_local_settings(values: Mapping[str, str], environ: MutableMapping[str, str]) -> list[str]:
    """Copy Values into the environment; a variable already set wins. Returns the names applied."""
    applied = []
    for name, value in values.items():
        if name not in environ:
            environ[name] = value
            applied.append(name)
    return applied


def resolve_setting_references(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace %Name% in a binding property with the app setting Name, as the host does."""
    if not isinstance(value, str):
        return value
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise HostConfigError(f"binding refers to app setting '%{name}%', which is not set")
        return env[name]

    return _SETTING_REF.sub(substitute, value)


@dataclass(frozen=True)
class HostKeys:
    master_key: str
    function_keys: dict[str, str]

    def is_function_key(self, candidate: str) -> bool:
        return any(secrets.compare_digest(candidate, key) for key in self.function_keys.values())

    def is_master_key(self, candidate: str) -> bool:
        return secrets.compare_digest(candidate, self.master_key)


def load_or_create_keys(path: Path) -> HostKeys:
    """Keys for local use, kept in a file (mode 0600) that is created with random keys if missing."""
    if path.is_file():
        document = json.loads(path.read_text(encoding="utf-8"))
        keys = HostKeys(
            master_key=str(document.get("masterKey") or ""),
            function_keys={str(k): str(v) for k, v in (document.get("functionKeys") or {}).items()},
        )
        if not keys.master_key or not keys.function_keys:
            raise HostConfigError(f"{path}: needs masterKey and at least one functionKeys entry")
        return keys
    keys = HostKeys(
        master_key=secrets.token_urlsafe(32), function_keys={"default": secrets.token_urlsafe(32)}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as keys_file:
        json.dump({"masterKey": keys.master_key, "functionKeys": keys.function_keys}, keys_file, indent=2)
    return keys
