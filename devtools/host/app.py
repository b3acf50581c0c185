"""Loads `function_app.app` and runs its HTTP, timer and queue triggers like `func start`."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devtools.host.config import (
    HostConfig,
    HostKeys,
    apply_local_settings,
    load_host_json,
    load_local_settings,
    load_or_create_keys,
)
from devtools.host.http_server import HttpDispatcher, HttpRoute, LocalHttpServer
from devtools.host.invoker import AsyncRunner, FunctionInvoker
from devtools.host.queues import QueueListener, QueueOutputSender
from devtools.host.static_site import StaticSite, console_config_from_settings
from devtools.host.storage import QueueClientFactory
from devtools.host.timers import TimerRunner

logger = logging.getLogger("devtools.host")
invocation_logger = logging.getLogger("devtools.host.invocations")

DEFAULT_PORT = 7071


@dataclass(frozen=True)
class HostOptions:
    app_dir: Path
    port: int | None = None
    bind: str = "127.0.0.1"
    local_settings: Path | None = None
    keys_file: Path | None = None
    # The built console served at `/` (a development convenience; in Azure the Static Web App serves
    # it). None: <app_dir>/web/dist when it holds an index.html. serve_console=False: none at all.
    console_dir: Path | None = None
    serve_console: bool = True


def record_invocation(
    invoker: FunctionInvoker,
    context: Any,
    trigger: str,
    started: float,
    error: BaseException | None,
    **extra: Any,
) -> None:
    """The one structured log line per invocation."""
    line: dict[str, Any] = {
        "event": "invocation",
        "function": invoker.name,
        "invocation_id": context.invocation_id,
        "trigger": trigger,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
        "outcome": "failed" if error else "succeeded",
        **extra,
    }
    if error is not None:
        line["error"] = f"{type(error).__name__}: {error}"
        invocation_logger.error(json.dumps(line, default=str))
        invocation_logger.debug("".join(traceback.format_exception(error)))
    else:
        invocation_logger.info(json.dumps(line, default=str))


def function_disabled(name: str, environ: Mapping[str, str]) -> bool:
    """`AzureWebJobs.<name>.Disabled` = true (or 1), as in Azure and under func start: the function's
    trigger is not started. The `AzureWebJobs__<name>__Disabled` spelling is accepted too."""
    for key in (f"AzureWebJobs.{name}.Disabled", f"AzureWebJobs__{name}__Disabled"):
        if environ.get(key, "").strip().lower() in ("true", "1"):
            return True
    return False


class LocalFunctionsHost:
    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.app_dir = options.app_dir.resolve()
        settings_path = options.local_settings or self.app_dir / "local.settings.json"
        local_settings = load_local_settings(settings_path)
        apply_local_settings(local_settings.values, os.environ)
        self.port = options.port or local_settings.local_http_port or DEFAULT_PORT
        self.config: HostConfig = load_host_json(self.app_dir / "host.json")
        self.keys: HostKeys = load_or_create_keys(
            options.keys_file or self.app_dir / ".local" / "host-keys.json"
        )
        if os.environ.get("WEBSITE_TIME_ZONE"):
            logger.warning("WEBSITE_TIME_ZONE is ignored: timer schedules run in UTC, as on Linux plans")
        self._async_runner = AsyncRunner()
        loaded = self._load_functions()
        self.disabled = sorted(i.name for i in loaded if function_disabled(i.name, os.environ))
        self.invokers = [i for i in loaded if i.name not in self.disabled]
        self._queue_clients = QueueClientFactory()
        self._sender = QueueOutputSender(self._queue_clients, self.config.queues.message_encoding)
        self.timers = [
            TimerRunner(i, record_invocation, self._sender.send_all)
            for i in self.invokers
            if i.trigger_type == "timerTrigger"
        ]
        self.listeners = [
            QueueListener(i, self._queue_clients, self.config.queues, self._sender, record_invocation)
            for i in self.invokers
            if i.trigger_type == "queueTrigger"
        ]
        routes = [HttpRoute.from_invoker(i) for i in self.invokers if i.trigger_type == "httpTrigger"]
        self.routes = routes
        self.console = self._console_site()
        dispatcher = HttpDispatcher(
            routes,
            self.config.route_prefix,
            self.keys,
            record_invocation,
            admin_routes={"/admin/host/status": self.status},
            send_outputs=self._sender.send_all,
            static_site=self.console,
        )
        self._http = LocalHttpServer((options.bind, self.port), dispatcher)
        self.port = int(self._http.server_address[1])
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="http", daemon=True)
        self._started_at = dt.datetime.now(dt.UTC)
        self._stopped = threading.Event()

    def _console_site(self) -> StaticSite | None:
        if not self.options.serve_console:
            return None
        folder = self.options.console_dir or self.app_dir / "web" / "dist"
        if not (folder / "index.html").is_file():
            if self.options.console_dir is not None or (self.app_dir / "web").is_dir():
                logger.warning("The console is not built (%s has no index.html): run `make install`", folder)
            return None
        api_base = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        return StaticSite.from_folder(folder, lambda: console_config_from_settings(api_base))

    def _load_functions(self) -> list[FunctionInvoker]:
        os.chdir(self.app_dir)
        if str(self.app_dir) not in sys.path:
            sys.path.insert(0, str(self.app_dir))
        module = importlib.import_module("function_app")
        app = getattr(module, "app", None)
        if app is None or not hasattr(app, "get_functions"):
            raise RuntimeError(f"{self.app_dir}/function_app.py does not define a FunctionApp named 'app'")
        invokers = [FunctionInvoker(f, str(self.app_dir), self._async_runner) for f in app.get_functions()]
        names = [i.name for i in invokers]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise RuntimeError(f"function names must be unique; repeated: {sorted(duplicates)}")
        return invokers

    def status(self) -> dict[str, Any]:
        return {
            "state": "Stopped" if self._stopped.is_set() else "Running",
            "started_at": self._started_at.isoformat(),
            "functions": [i.name for i in self.invokers],
            "disabled": list(self.disabled),
            "queue_listeners": [asdict(listener.status()) for listener in self.listeners],
        }

    def describe(self) -> list[str]:
        base = f"http://{self.options.bind}:{self.port}"
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        lines = []
        for route in self.routes:
            methods = ",".join(route.methods) if len(route.methods) < 8 else "ALL"
            lines.append(f"  {route.invoker.name}: [{methods}] {base}{prefix}/{route.template.template}")
        for timer in self.timers:
            lines.append(f"  {timer.invoker.name}: timerTrigger '{timer.schedule.expression}'")
        for listener in self.listeners:
            lines.append(f"  {listener.invoker.name}: queueTrigger '{listener.queue_name}'")
        lines.extend(f"  {name}: disabled" for name in self.disabled)
        return lines

    def start(self) -> None:
        self._http_thread.start()
        for listener in self.listeners:
            listener.start()
        for timer in self.timers:
            timer.start()
        logger.info("Functions:\n%s", "\n".join(self.describe()) or "  (none)")
        logger.info("Host listening on http://%s:%d (keys in %s)", self.options.bind, self.port,
                    self.options.keys_file or self.app_dir / ".local" / "host-keys.json")  # fmt: skip
        if self.console is not None:
            logger.info("Console: http://%s:%d/ (from %s)", self.options.bind, self.port, self.console.root)

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        logger.info("Host stopping")
        self._http.shutdown()
        self._http.server_close()
        for listener in self.listeners:
            listener.stop()
        for timer in self.timers:
            timer.stop()
        self._async_runner.close()
        logger.info("Host stopped")
