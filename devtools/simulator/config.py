"""The simulator's settings: one frozen dataclass shared by the Python API and the CLI."""

from __future__ import annotations

import datetime as dt
import math
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from devtools.simulator.signing import ApiRegistration, SpaRegistration
from shared.platform.clock import AcceleratedClock, utc_iso

DEFAULT_TENANT_ID = "00000000-0000-0000-0000-0000000000aa"
SIM_DAY_SECONDS = 86_400
DEFAULT_DEVOPS_PAT = "local-devops-pat"
# (pipeline id, name): the pipelines every organization/project of the fake Azure DevOps has.
DEFAULT_DEVOPS_PIPELINES: tuple[tuple[int, str], ...] = (
    (1, "tenant-config-backup"),
    (2, "intune-config-backup"),
    (3, "entra-config-backup"),
)


def default_epoch() -> dt.datetime:
    """Now minus one day, to the whole second."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(microsecond=0)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that decides what the fake tenant contains and how its APIs misbehave.

    Times are simulated (AcceleratedClock over epoch, speed and started_at_unix) except
    retry_after_seconds, which is real seconds as a client would sleep them.
    """

    tenant_id: str = DEFAULT_TENANT_ID
    seed: int = 1
    events_per_day: int = 2000
    epoch: dt.datetime = field(default_factory=default_epoch)
    speed: float = 1.0
    started_at_unix: float = field(default_factory=time.time)
    graph_max_delay_seconds: float = 600.0
    management_max_delay_seconds: float = 3 * 86_400.0
    throttle_rate: float = 0.0
    throttle_without_retry_after: float = 0.5
    server_error_rate: float = 0.0
    duplicate_across_pages_rate: float = 0.0
    malformed_rate: float = 0.0
    retry_after_seconds: int = 1
    devops_pat: str = DEFAULT_DEVOPS_PAT
    devops_pipelines: tuple[tuple[int, str], ...] = DEFAULT_DEVOPS_PIPELINES
    devops_server_error_rate: float = 0.0
    # Live service principals of the tenant at the start (devtools/simulator/apps.py), including the
    # directory's twelve and Microsoft Graph; generated on first use of the application routes.
    service_principals: int = 100
    # Sign-in for the admin console: single-page applications (client id, redirect URIs) and the APIs
    # their users' access tokens are for, registered when the simulator is built (sign_in_from_env).
    spa_clients: tuple[SpaRegistration, ...] = ()
    apis: tuple[ApiRegistration, ...] = ()

    def __post_init__(self) -> None:
        try:
            tenant = str(uuid.UUID(self.tenant_id))
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"tenant_id must be a GUID, got {self.tenant_id!r}") from exc
        object.__setattr__(self, "tenant_id", tenant)
        if not isinstance(self.epoch, dt.datetime) or self.epoch.tzinfo is None:
            raise ValueError("epoch must be a timezone-aware datetime")
        object.__setattr__(self, "epoch", self.epoch.astimezone(dt.UTC))
        if self.events_per_day < 0:
            raise ValueError("events_per_day must be >= 0")
        if not (self.speed > 0 and math.isfinite(self.speed)):
            raise ValueError("speed must be a positive finite number")
        if self.graph_max_delay_seconds < 0 or self.management_max_delay_seconds < 0:
            raise ValueError("delays must be >= 0")
        for name in (
            "throttle_rate",
            "throttle_without_retry_after",
            "server_error_rate",
            "duplicate_across_pages_rate",
            "malformed_rate",
            "devops_server_error_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.throttle_rate + self.server_error_rate > 1.0:
            raise ValueError("throttle_rate + server_error_rate must not exceed 1")
        if self.retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must be >= 0")
        if not isinstance(self.devops_pat, str) or not self.devops_pat:
            raise ValueError("devops_pat must be a non-empty string")
        pipelines = tuple((int(pid), str(name)) for pid, name in self.devops_pipelines)
        if any(pid <= 0 for pid, _ in pipelines) or len({pid for pid, _ in pipelines}) != len(pipelines):
            raise ValueError("devops_pipelines must have distinct positive ids")
        object.__setattr__(self, "devops_pipelines", pipelines)
        if (
            isinstance(self.service_principals, bool)
            or not isinstance(self.service_principals, int)
            or not (13 <= self.service_principals <= 100_000)
        ):
            raise ValueError(
                f"service_principals must be an integer from 13 to 100000, got {self.service_principals!r}"
            )
        for name, kind in (("spa_clients", SpaRegistration), ("apis", ApiRegistration)):
            values = tuple(getattr(self, name))
            if not all(isinstance(v, kind) for v in values):
                raise ValueError(f"{name} must hold {kind.__name__} values")
            object.__setattr__(self, name, values)

    def clock(self) -> AcceleratedClock:
        return AcceleratedClock(self.epoch, self.speed, self.started_at_unix)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dt.datetime):
                value = utc_iso(value)
            elif f.name in ("spa_clients", "apis"):
                value = [asdict(v) for v in value]
            out[f.name] = value
        return out


# Environment variables that register the console's sign-in on a simulator (see sign_in_from_env).
ENV_SPA_CLIENT_ID = "SIMULATOR_SPA_CLIENT_ID"
ENV_SPA_REDIRECT_URIS = "SIMULATOR_SPA_REDIRECT_URIS"  # comma- or blank-separated


def sign_in_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """SimulatorConfig keyword arguments for the console's sign-in, from the environment.

    SIMULATOR_SPA_CLIENT_ID and SIMULATOR_SPA_REDIRECT_URIS register the SPA; the API registration
    comes from the app's own settings, API_CLIENT_ID and API_AUDIENCE (its App ID URI unless that is
    the bare client id; default api://<client id>), so the simulator issues tokens the API in Entra
    mode accepts. Unset variables give no keyword; ValueError for invalid values.
    """
    out: dict[str, Any] = {}
    spa = (environ.get(ENV_SPA_CLIENT_ID) or "").strip()
    if spa:
        uris = tuple(u for u in re.split(r"[,\s]+", environ.get(ENV_SPA_REDIRECT_URIS) or "") if u)
        out["spa_clients"] = (SpaRegistration(spa, uris),)
    api = (environ.get("API_CLIENT_ID") or "").strip()
    audience = (environ.get("API_AUDIENCE") or "").strip()
    if api:
        client_id = str(uuid.UUID(api))
        app_id_uri = audience if audience and audience.lower() != client_id else f"api://{client_id}"
        out["apis"] = (ApiRegistration(client_id=client_id, app_id_uri=app_id_uri),)
    return out
