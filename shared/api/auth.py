"""Who is calling the HTTP API, and what they may do.

Three modes, each switched on in settings:
- function keys (the Azure default): the host has already checked the key; the caller gets the roles
  configured for key holders;
- Entra ID bearer tokens, verified with pyjwt against the tenant's JWKS: RS256 only, signature, `aud`,
  `iss` (v1 or v2 endpoint of an allowed tenant), `exp` / `nbf` with a small leeway on the injected
  clock, an optional `tid` allow-list, and app roles;
- Static Web Apps linked backend: `x-ms-client-principal`, trusted only when that mode is on.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from shared.clock import Clock

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
    """Signing keys by `kid`, cached for `ttl`; an unknown `kid` triggers a refetch at most once per
    `min_refresh_interval`, so forged kids cannot make the app hammer the key endpoint."""

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, Any]],
        clock: Clock,
        *,
        ttl: dt.timedelta = dt.timedelta(hours=12),
        min_refresh_interval: dt.timedelta = dt.timedelta(minutes=5),
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._min_refresh = min_refresh_interval
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: dt.datetime | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def _refresh(self, now: dt.datetime) -> None:
        document = self._fetch()
        self.fetches += 1
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, dict) or not entry.get("kid"):
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                logger.warning("skipping an unusable JWKS key %s", entry.get("kid"))
        self._keys = keys
        self._fetched_at = now

    def key(self, kid: str) -> jwt.PyJWK | None:
        now = self._clock.now()
        with self._lock:
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
            may_refresh = self._fetched_at is None or now - self._fetched_at >= self._min_refresh
            if stale or (kid not in self._keys and may_refresh):
                self._refresh(now)
            return self._keys.get(kid)


def issuers_for(tenant_id: str, authority_host: str) -> set[str]:
    """The v1 and v2 token issuers of a tenant."""
    return {f"https://sts.windows.net/{tenant_id}/", f"{authority_host.rstrip('/')}/{tenant_id}/v2.0"}


@dataclass
class EntraTokenVerifier:
    jwks: JwksCache
    audiences: list[str]
    allowed_tenants: list[str]
    authority_host: str
    clock: Clock
    leeway_seconds: float = 60.0

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError(401, "the bearer token is not a JWT") from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise AuthError(401, f"token algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        key = self.jwks.key(str(kid)) if kid else None
        if key is None:
            raise AuthError(401, "the token was not signed by a known key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALLOWED_ALGORITHMS),
                audience=self.audiences,
                options={
                    "require": ["exp", "iss", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise AuthError(401, "the token is for another audience") from None
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"invalid token: {type(exc).__name__}") from None
        self._check_times(claims)
        tenant = str(claims.get("tid") or "")
        if tenant not in self.allowed_tenants:
            raise AuthError(401, "the token's tenant is not allowed")
        if claims.get("iss") not in issuers_for(tenant, self.authority_host):
            raise AuthError(401, "the token's issuer is not the tenant's")
        roles = effective_roles(claims.get("roles") or [])
        if not roles:
            raise AuthError(403, "the caller has no AOC role")
        subject = str(claims.get("oid") or claims.get("sub") or "")
        name = str(claims.get("preferred_username") or claims.get("upn") or claims.get("appid") or subject)
        return Principal(subject=subject, name=name, roles=roles, auth="entra", tenant_id=tenant)

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self.clock.now().timestamp()
        try:
            expires = float(claims["exp"])
            not_before = float(claims["nbf"]) if "nbf" in claims else None
        except (TypeError, ValueError):
            raise AuthError(401, "invalid token: bad exp or nbf") from None
        if now > expires + self.leeway_seconds:
            raise AuthError(401, "the token has expired")
        if not_before is not None and now < not_before - self.leeway_seconds:
            raise AuthError(401, "the token is not valid yet")


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
