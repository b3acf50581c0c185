"""Start and stop the local Azure services: Azurite (blob, queue, table) and cosmosdb-server.

`make run`, the tests and the benchmarks all start services through this module, so they share one
way of choosing ports, waiting for readiness and stopping by PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.certs import LocalCertificates, ensure_local_certificates

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEVTOOLS_DIR = PROJECT_ROOT / "devtools"
NODE_MODULES = DEVTOOLS_DIR / "node_modules"
LOCAL_STATE_DIR = PROJECT_ROOT / ".local"

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# The Cosmos DB emulator's well-known key; cosmosdb-server does not check it.
COSMOS_EMULATOR_KEY = (
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
)

READY_TIMEOUT_SECONDS = 60.0


class ServiceError(RuntimeError):
    """A local service could not be started."""


class PortInUseError(ServiceError):
    pass


@dataclass(frozen=True)
class ServicePorts:
    blob: int = 10000
    queue: int = 10001
    table: int = 10002
    cosmos: int = 8081

    @classmethod
    def free(cls) -> ServicePorts:
        return cls(blob=free_port(), queue=free_port(), table=free_port(), cosmos=free_port())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int, purpose: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on 127.0.0.1 ({purpose}) is already in use. Stop the process that holds "
                f"it (see `lsof -i :{port}` or `ss -ltnp 'sport = :{port}'`) and try again."
            ) from exc


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, log_file: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{name} exited with code {process.returncode}:\n{_tail(log_file)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise ServiceError(f"{name} did not listen on port {port} within {READY_TIMEOUT_SECONDS:.0f} s")


def _die_with_parent() -> None:
    """Runs in the child before exec: on Linux, get SIGTERM when the parent process dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def require_node_modules() -> None:
    missing = [
        p for p in (NODE_MODULES / "azurite", NODE_MODULES / "@vercel" / "cosmosdb-server") if not p.exists()
    ]
    if missing:
        raise ServiceError(
            "local Azure services are not installed: run `make install` (npm ci in devtools/)."
        )
    if shutil.which("node") is None:
        raise ServiceError("node is not on PATH; install Node.js 20 or newer")


@dataclass
class LocalServices:
    """Azurite and cosmosdb-server as child processes on loopback ports."""

    ports: ServicePorts = field(default_factory=ServicePorts)
    state_dir: Path = LOCAL_STATE_DIR
    in_memory: bool = False
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    certificates: LocalCertificates | None = None

    @property
    def storage_connection_string(self) -> str:
        base = f"http://127.0.0.1:{{port}}/{AZURITE_ACCOUNT}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={base.format(port=self.ports.blob)};"
            f"QueueEndpoint={base.format(port=self.ports.queue)};"
            f"TableEndpoint={base.format(port=self.ports.table)};"
        )

    @property
    def cosmos_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.ports.cosmos}/"

    def app_environment(self) -> dict[str, str]:
        """The app settings that point the app at these services."""
        assert self.certificates is not None, "start() first"
        return {
            "AzureWebJobsStorage": self.storage_connection_string,
            "COSMOS_ENDPOINT": self.cosmos_endpoint,
            "COSMOS_KEY": COSMOS_EMULATOR_KEY,
            "COSMOS_CA_CERT_PATH": str(self.certificates.ca_cert),
        }

    def start(self) -> None:
        require_node_modules()
        for port, purpose in (
            (self.ports.blob, "Azurite blob"),
            (self.ports.queue, "Azurite queue"),
            (self.ports.table, "Azurite table"),
            (self.ports.cosmos, "cosmosdb-server"),
        ):
            ensure_port_free(port, purpose)
        self.certificates = ensure_local_certificates(self.state_dir / "certs")
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            self._start_azurite(logs / "azurite.log")
            self._start_cosmos(logs / "cosmosdb-server.log")
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, args: list[str], log_file: Path) -> subprocess.Popen[bytes]:
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                args,
                cwd=DEVTOOLS_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._processes[name] = process
        return process

    def _start_azurite(self, log_file: Path) -> None:
        args = [
            "node",
            str(NODE_MODULES / "azurite" / "dist" / "src" / "azurite.js"),
            "--silent",
            "--skipApiVersionCheck",
            "--disableProductStyleUrl",
            "--blobHost", "127.0.0.1", "--blobPort", str(self.ports.blob),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.ports.queue),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.ports.table),
        ]  # fmt: skip
        if self.in_memory:
            args.append("--inMemoryPersistence")
        else:
            data_dir = self.state_dir / "azurite"
            data_dir.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(data_dir)]
        process = self._spawn("azurite", args, log_file)
        for port in (self.ports.blob, self.ports.queue, self.ports.table):
            wait_for_port(port, process, "Azurite", log_file)

    def _start_cosmos(self, log_file: Path) -> None:
        assert self.certificates is not None
        args = [
            "node",
            str(DEVTOOLS_DIR / "cosmos_server.js"),
            "127.0.0.1",
            str(self.ports.cosmos),
            str(self.certificates.server_cert),
            str(self.certificates.server_key),
        ]
        process = self._spawn("cosmosdb-server", args, log_file)
        wait_for_port(self.ports.cosmos, process, "cosmosdb-server", log_file)

    def stop(self) -> None:
        for name, process in list(self._processes.items()):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
            del self._processes[name]

    def __enter__(self) -> LocalServices:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    """`python -m devtools.services`: run Azurite and cosmosdb-server on their default ports."""
    services = LocalServices()
    try:
        services.start()
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"Azurite on 10000-10002, cosmosdb-server on {services.cosmos_endpoint}; Ctrl-C stops them")
    print(f"COSMOS_CA_CERT_PATH={services.certificates.ca_cert if services.certificates else ''}")
    try:
        while not stop.wait(timeout=1.0):
            pass
    finally:
        services.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
