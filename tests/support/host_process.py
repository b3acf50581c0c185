"""Runs `python -m devtools.host` as a child process, as a user would, for integration tests."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.services import PROJECT_ROOT, free_port

_NON_HTTP_FUNCTIONS = (
    "import json, function_app; print(json.dumps([f.get_function_name() for f in "
    "function_app.app.get_functions() if not f.is_http_function()]))"
)


@functools.cache
def non_http_functions() -> tuple[str, ...]:
    """The app's timer and queue functions. Read in a process of its own: function_app's app may index
    its functions only once per process, and other tests do that in this one."""
    done = subprocess.run(
        [sys.executable, "-c", _NON_HTTP_FUNCTIONS],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = json.loads(done.stdout.strip().splitlines()[-1])
    assert names, "the app has timer and queue functions"
    return tuple(str(name) for name in names)


def http_functions_only() -> dict[str, str]:
    """Settings that leave a host only its HTTP functions (the app setting AzureWebJobs.<name>.Disabled,
    as on Azure): for a stack whose storage must change only by the requests a test sends, or that lives
    long enough for its timers and queue listeners to take other tests' messages."""
    return {f"AzureWebJobs.{name}.Disabled": "true" for name in non_http_functions()}


MASTER_KEY = "test-master-key"
FUNCTION_KEY = "test-function-key"


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> HttpResult:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return HttpResult(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return HttpResult(error.code, dict(error.headers.items()), error.read())


@dataclass
class HostProcess:
    app_dir: Path
    work_dir: Path
    environment: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.work_dir / f"host-{self.port}.log"

    @property
    def events_file(self) -> Path:
        return self.work_dir / "events.jsonl"

    def start(self, timeout: float = 30.0) -> HostProcess:
        keys_file = self.work_dir / "host-keys.json"
        keys_file.write_text(json.dumps({"masterKey": MASTER_KEY, "functionKeys": {"default": FUNCTION_KEY}}))
        env = {
            **os.environ,
            **self.environment,
            "HOST_TEST_EVENTS": str(self.events_file),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devtools.host",
                    "--app-dir",
                    str(self.app_dir),
                    "--port",
                    str(self.port),
                    "--keys-file",
                    str(keys_file),
                    "--local-settings",
                    str(self.work_dir / "no-local-settings.json"),
                ],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"host exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.status() is not None:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"host did not start within {timeout} s:\n{self.log()}")

    def status(self) -> dict[str, Any] | None:
        result = http_request(
            "GET", f"{self.base_url}/admin/host/status", headers={"x-functions-key": MASTER_KEY}
        )
        return result.json() if result.status == 200 else None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def events(self, fn: str | None = None) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        rows = [json.loads(line) for line in self.events_file.read_text().splitlines() if line.strip()]
        return [row for row in rows if fn is None or row.get("fn") == fn]

    def stop(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode


def wait_until(predicate: Any, timeout: float, interval: float = 0.1, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
