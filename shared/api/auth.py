"""Who is calling the HTTP API, and what they may do.

Three modes, each switched on in settings:
- function keys (the Azure default): the host has already checked the key; the caller gets the roles
  configured for key holders;
- Entra ID bearer tokens, verified with pyjwt against the tenant's JWKS: RS256 only, signature, then
  the shape Entra issues: a v1.0 token (`iss` the cloud's v1 issuer, `aud` the App ID URI or client
  id) or a v2.0 token (`iss` ending in /v2.0, `aud` the client id), of an allowed tenant; `exp`, `nbf`
  and `iat` finite numbers checked with a small leeway on the injected clock; app roles;
- Static Web Apps linked backend: `x-ms-client-principal`, trusted only when that mode is on, which the
  settings allow only behind App Service authentication (see shared/platform/settings.py).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from shared.m365.cloud import CloudEndpoints
from shared.platform.clock import Clock

logger = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256",)


class Role(StrEnum):
    READER = "AOC.Reader"
    ANALYST = "AOC.Analyst"  # tags, comments, alert status
    ADMIN = "AOC.Admin"  # rules, probe runs, audit log
    PRIVACY = "AOC.Privacy"  # may see services and operations marked sensitive


_IMPLIED: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset({Role.ANALYST, Role.READER}),
    Role.ANALYST: frozenset({Role.READER}),
}
_KNOWN = frozenset(r.value for r in Role)


def effective_roles(roles: Iterable[str]) -> frozenset[str]:
    granted = {r for r in roles if r in _KNOWN}
    for role in list(granted):
        granted |= _IMPLIED.get(role, frozenset())
    return frozenset(granted)


@dataclass(frozen=True)
class Principal:
    subject: str
    name: str
    roles: frozenset[str]
    auth: str  # "entra", "swa" or "key"
    tenant_id: str | None = None

    def has(self, role: Role) -> bool:
        return role.value in self.roles

    @property
    def sees_sensitive(self) -> bool:
        return self.has(Role.PRIVACY)


class AuthError(Exception):
    """401 (who are you?) or 403 (not allowed); the message is safe to return to the caller."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class JwksCache:
    """The tenant's token-signing keys by `kid`, fetched from its JWKS document.

    - Only RSA signature keys are kept (`kty` RSA, `use` absent or `sig`, `alg` absent or RS256): an EC,
      `oct` or encryption key in the document can never verify a token.
    - Keys are refreshed after `ttl`. An unknown `kid` triggers a refetch at most once per
      `min_refresh_interval`, so forged kids cannot make the app hammer the key endpoint.
    - One refresh runs at a time. While it runs, callers that hold usable keys carry on with them;
      only a cold start (no keys yet) waits for it.
    - An outage (the fetch fails, or answers a document without a usable key) keeps the cached keys
      for up to `max_stale` past their refresh time, and backs off between attempts (`retry_after`
      doubling up to `max_retry_after`). `key()` never raises: no usable key means None, a 401.

    All times come from the injected clock.
    """

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, Any]],
        clock: Clock,
        *,
        ttl: dt.timedelta = dt.timedelta(hours=12),
        min_refresh_interval: dt.timedelta = dt.timedelta(minutes=5),
        max_stale: dt.timedelta = dt.timedelta(hours=24),
        retry_after: dt.timedelta = dt.timedelta(seconds=30),
        max_retry_after: dt.timedelta = dt.timedelta(minutes=10),
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._min_refresh = min_refresh_interval
        self._max_stale = max_stale
        self._retry_after = retry_after
        self._max_retry_after = max_retry_after
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: dt.datetime | None = None  # last successful fetch
        self._attempted_at: dt.datetime | None = None  # last attempt, successful or not
        self._failures = 0  # consecutive failed attempts
        self._next_attempt_at: dt.datetime | None = None  # back-off after a failure
        self._state = threading.Lock()  # guards the fields above; never held during a fetch
        self._refreshing = threading.Lock()  # held by the one refresh in flight
        self.fetches = 0  # attempts, successful or not

    @staticmethod
    def usable_keys(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
        """The RS256 signature keys of a JWKS document, by `kid`; anything else is skipped."""
        entries = document.get("keys") if isinstance(document, Mapping) else None
        keys: dict[str, jwt.PyJWK] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            if entry.get("alg", "RS256") not in ALLOWED_ALGORITHMS:
                continue
            try:
                keys[kid] = jwt.PyJWK(entry, algorithm="RS256")
            except Exception:  # a malformed key in the document must not break the others
                logger.warning("skipping an unusable JWKS key %s", kid[:64])
        return keys

    def _due(self, kid: str, now: dt.datetime) -> bool:
        """Whether a refresh should be attempted now (call with `_state` held)."""
        if self._next_attempt_at is not None and now < self._next_attempt_at:
            return False
        if self._fetched_at is None or now - self._fetched_at >= self._ttl:
            return True
        recently = self._attempted_at is not None and now - self._attempted_at < self._min_refresh
        return kid not in self._keys and not recently

    def _usable(self, now: dt.datetime) -> bool:
        """Whether the cached keys may still verify tokens (call with `_state` held)."""
        return self._fetched_at is not None and now < self._fetched_at + self._ttl + self._max_stale

    def _refresh(self, kid: str) -> None:
        """Fetch once, unless another thread refreshed while this one waited (`_refreshing` held)."""
        now = self._clock.now()
        with self._state:
            if not self._due(kid, now):
                return
            self._attempted_at = now
            self.fetches += 1
        try:
            keys = self.usable_keys(self._fetch())
            if not keys:
                raise ValueError("the JWKS document has no RSA signature key")
        except Exception as exc:  # any fetch failure is an outage: keep the cached keys
            with self._state:
                self._failures += 1
                doublings = min(self._failures - 1, 30)  # bounded: a long outage must not overflow
                delay = min(self._retry_after * 2**doublings, self._max_retry_after)
                self._next_attempt_at = now + delay
                failures = self._failures
            logger.warning(
                "JWKS refresh failed (%s, %d in a row); keeping cached keys, next try in %s",
                type(exc).__name__,
                failures,
                delay,
            )
            return
        with self._state:
            self._keys = keys
            self._fetched_at = now
            self._failures = 0
            self._next_attempt_at = None

    def key(self, kid: str) -> jwt.PyJWK | None:
        now = self._clock.now()
        with self._state:
            due = self._due(kid, now)
            usable = self._usable(now)
        # With usable keys, don't queue behind a refresh in flight: verify with what we have.
        if due and self._refreshing.acquire(blocking=not usable):
            try:
                self._refresh(kid)
            finally:
                self._refreshing.release()
        now = self._clock.now()
        with self._state:
            return self._keys.get(kid) if self._usable(now) else None


@dataclass(frozen=True)
class ApiAudience:
    """What the API's own app registration is called in tokens.

    v2.0 access tokens always carry the client id (a GUID) in `aud`; v1.0 tokens carry whichever the
    client named when it asked for the token: the App ID URI (e.g. `api://aoc-functions`) or the
    client id.
    """

    client_id: str
    app_id_uri: str | None = None

    def accepts(self, version: str, audience: str) -> bool:
        if version == "2.0":
            return audience == self.client_id
        return audience == self.client_id or (self.app_id_uri is not None and audience == self.app_id_uri)


def _finite_number(value: Any) -> float | None:
    """`value` as a float when it is a finite JSON number (not a bool, not past float range), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past float range
        return None
    return number if math.isfinite(number) else None


@dataclass
class EntraTokenVerifier:
    """Verifies Entra ID access tokens for the API: v1.0 and v2.0, each with its own issuer and
    audience rules, for the tenants allowed."""

    jwks: JwksCache
    audience: ApiAudience
    allowed_tenants: Sequence[str]
    cloud: CloudEndpoints  # the issuers of v1.0 and v2.0 tokens
    clock: Clock
    leeway_seconds: float = 60.0

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError(401, "the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in ALLOWED_ALGORITHMS:
            raise AuthError(401, "the token's algorithm is not accepted")
        kid = header.get("kid")
        key = self.jwks.key(kid) if isinstance(kid, str) and 0 < len(kid) <= 256 else None
        if key is None:
            raise AuthError(401, "the token was not signed by a known key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALLOWED_ALGORITHMS),
                # Signature only: the claims are checked below, by token version.
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            # ValueError / TypeError: a key pyjwt cannot use for this token is still the caller's fault.
            raise AuthError(401, "invalid token") from None
        self._check_times(claims)
        tenant = self._check_issuer_and_audience(claims)
        raw_roles = claims.get("roles")
        if raw_roles is not None and not isinstance(raw_roles, list):
            raise AuthError(403, "the token's roles claim is not a list")
        roles = effective_roles(r for r in raw_roles or [] if isinstance(r, str))
        if not roles:
            raise AuthError(403, "the caller has no AOC role")
        subject = _text(claims.get("oid")) or _text(claims.get("sub"))
        name = (
            _text(claims.get("preferred_username"))
            or _text(claims.get("upn"))
            or _text(claims.get("unique_name"))
            or _text(claims.get("azp"))
            or _text(claims.get("appid"))
            or subject
        )
        return Principal(subject=subject, name=name, roles=roles, auth="entra", tenant_id=tenant)

    def _check_issuer_and_audience(self, claims: Mapping[str, Any]) -> str:
        """The token's tenant, once `ver`, `iss`, `tid` and `aud` form a shape Entra actually issues."""
        version, issuer, tenant, audience = (claims.get(k) for k in ("ver", "iss", "tid", "aud"))
        if version not in ("1.0", "2.0"):
            raise AuthError(401, "the token's version is not 1.0 or 2.0")
        if not (isinstance(issuer, str) and isinstance(tenant, str) and isinstance(audience, str)):
            raise AuthError(401, "the token lacks iss, tid or aud")
        if tenant not in self.allowed_tenants:
            raise AuthError(401, "the token's tenant is not allowed")
        expected = self.cloud.v1_issuer(tenant) if version == "1.0" else self.cloud.v2_issuer(tenant)
        if issuer != expected:
            raise AuthError(401, "the token's issuer does not match its tenant and version")
        if not self.audience.accepts(version, audience):
            raise AuthError(401, "the token is for another audience")
        return tenant

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        parsed = {name: _finite_number(claims.get(name)) for name in ("exp", "nbf", "iat")}
        times = {name: value for name, value in parsed.items() if value is not None}
        if len(times) != len(parsed):
            raise AuthError(401, "invalid token: exp, nbf and iat must be numbers")
        now = self.clock.now().timestamp()
        if now > times["exp"] + self.leeway_seconds:
            raise AuthError(401, "the token has expired")
        if now < times["nbf"] - self.leeway_seconds:
            raise AuthError(401, "the token is not valid yet")
        if times["iat"] > now + self.leeway_seconds:
            raise AuthError(401, "the token was issued in the future")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


SWA_ROLE_MAP: dict[str, str] = {
    "reader": Role.READER,
    "analyst": Role.ANALYST,
    "admin": Role.ADMIN,
    "privacy": Role.PRIVACY,
}


def principal_from_swa(header: str) -> Principal:
    """The Static Web Apps client principal (base64 JSON with `userRoles`), roles mapped onto ours."""
    try:
        document = json.loads(base64.b64decode(header, validate=False).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthError(401, "x-ms-client-principal is not base64 JSON") from None
    if not isinstance(document, dict):
        raise AuthError(401, "x-ms-client-principal is not a JSON object")
    raw_roles = document.get("userRoles") or []
    if not isinstance(raw_roles, list):
        raise AuthError(401, "x-ms-client-principal userRoles must be a list")
    mapped = [SWA_ROLE_MAP.get(str(r).lower(), str(r)) for r in raw_roles]
    roles = effective_roles(mapped)
    if not roles:
        raise AuthError(403, "the caller has no AOC role")
    subject = str(document.get("userId") or "")
    return Principal(
        subject=subject, name=str(document.get("userDetails") or subject), roles=roles, auth="swa"
    )


@dataclass
class Authenticator:
    """Tries the switched-on modes in order: bearer token, SWA principal, function key."""

    verifier: EntraTokenVerifier | None
    swa_enabled: bool
    # Function-key mode: the routes are function-level, so the host has refused any call without a
    # valid key before the function runs; such a caller gets these roles.
    key_roles: frozenset[str] = frozenset()

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        lowered = {k.lower(): v for k, v in headers.items()}
        authorization = lowered.get("authorization", "")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError(401, "use Authorization: Bearer <token>")
            if self.verifier is None:
                raise AuthError(401, "bearer tokens are not accepted by this deployment")
            return self.verifier.verify(token.strip())
        if self.swa_enabled and lowered.get("x-ms-client-principal"):
            return principal_from_swa(lowered["x-ms-client-principal"])
        if self.key_roles:
            return Principal(subject="function-key", name="function-key", roles=self.key_roles, auth="key")
        raise AuthError(401, "authentication required")
