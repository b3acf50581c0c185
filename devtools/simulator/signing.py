"""The tenant's token-signing key, the APIs registered in the tenant, and access tokens for them.

Real Entra ID signs access tokens with RS256 keys published at
`{authority}/{tenant}/discovery/v2.0/keys`; the API verifies them against that document. The
simulator does the same with a key made at start-up, so the API's Entra mode runs end to end.

Which token shape Entra issues is the *resource's* choice, not the client's: the API's app
registration sets `api.requestedAccessTokenVersion` (`accessTokenAcceptedVersion` in the manifest),
null or 1 for v1.0 tokens, 2 for v2.0 tokens, whichever endpoint the client used. Then:

- v1.0: `iss` `https://sts.windows.net/{tid}/` (`https://sts.chinacloudapi.cn/{tid}/` for 21Vianet),
  `ver` "1.0", `aud` the resource as the client named it (App ID URI or client id), `appid`;
- v2.0: `iss` `{authority}/{tid}/v2.0`, `ver` "2.0", `aud` always the client id, `azp`.

(learn.microsoft.com/entra/identity-platform/access-token-claims-reference.)

A signed-in user's tokens also carry `scp` (the delegated scopes granted) and `name`; the ID token a
single-page application receives is always v2.0, for the SPA's own client id (`id_token_claims`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

TokenVersion = Literal["1.0", "2.0"]
GLOBAL_V1_ISSUER_HOST = "https://sts.windows.net"
# The app roles the AOC API's registration defines (appRoles[].value), in the order the sign-in page
# lists them.
AOC_APP_ROLES: tuple[str, ...] = ("AOC.Reader", "AOC.Analyst", "AOC.Admin", "AOC.Privacy")
# The delegated permission the API exposes (api.oauth2PermissionScopes[].value).
DEFAULT_API_SCOPES: tuple[str, ...] = ("access_as_user",)
_SCOPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
_ROLE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
MAX_REDIRECT_URI_LENGTH = 256  # Entra's limit on a redirect URI
MAX_REDIRECT_URIS = 256
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _b64_uint(value: int) -> str:
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenSigningKey:
    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(10)

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        key = {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": _b64_uint(numbers.n)}
        return {"keys": [{**key, "e": _b64_uint(numbers.e)}]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})


@dataclass(frozen=True)
class ApiRegistration:
    """An API's app registration, as far as the shape of its access tokens goes."""

    client_id: str  # Application (client) ID, a GUID
    app_id_uri: str  # Application ID URI, e.g. api://aoc-functions
    access_token_version: Literal[1, 2] = 2  # api.requestedAccessTokenVersion
    scopes: tuple[str, ...] = DEFAULT_API_SCOPES  # delegated permissions it exposes (`scp`)
    app_roles: tuple[str, ...] = AOC_APP_ROLES  # app roles a user can be assigned (`roles`)

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_id", str(uuid.UUID(self.client_id)))
        if self.access_token_version not in (1, 2):
            raise ValueError("access_token_version is 1 or 2")
        scopes, roles = tuple(self.scopes), tuple(self.app_roles)
        if not scopes or not all(isinstance(x, str) and _SCOPE_NAME.fullmatch(x) for x in scopes):
            raise ValueError("scopes must be non-empty names of letters, digits, '.', '_' and '-'")
        if not all(isinstance(x, str) and _ROLE_VALUE.fullmatch(x) for x in roles):
            raise ValueError("app_roles must be names of letters, digits, '.', '_' and '-'")
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "app_roles", roles)

    @property
    def version(self) -> TokenVersion:
        return "2.0" if self.access_token_version == 2 else "1.0"

    def names(self, resource: str) -> bool:
        """Whether a client asking for `resource` (App ID URI or client id) means this API."""
        resource = resource.rstrip("/")
        return resource == self.app_id_uri.rstrip("/") or resource.lower() == self.client_id

    def audience(self, requested: str) -> str:
        """The `aud` Entra puts in a token for `requested`: the client id in v2.0 tokens; in v1.0
        tokens whichever of App ID URI and client id the client asked for."""
        if not self.names(requested):
            raise ValueError(f"{requested!r} is neither {self.app_id_uri!r} nor {self.client_id!r}")
        if self.version == "2.0" or requested.rstrip("/").lower() == self.client_id:
            return self.client_id
        return self.app_id_uri


def split_scope(scope: str) -> tuple[str, str] | None:
    """A resource scope as (resource, permission): `api://aoc-functions/access_as_user` ->
    (`api://aoc-functions`, `access_as_user`); None for a bare name such as `openid`."""
    resource, slash, permission = scope.rpartition("/")
    if not slash or not resource or not permission:
        return None
    return resource, permission


def check_redirect_uri(uri: str) -> str:
    """`uri` when Entra would accept it as a SPA redirect URI, else ValueError: absolute, https (http
    only for a loopback host), no fragment, at most 256 characters."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise ValueError(f"a redirect URI is 1 to {MAX_REDIRECT_URI_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        raise ValueError(f"redirect URI {uri!r} contains blanks or control characters")
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"redirect URI {uri!r} is not an absolute http(s) URL")
    if parts.fragment or "#" in uri:
        raise ValueError(f"redirect URI {uri!r} must not have a fragment")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError(f"redirect URI {uri!r}: http is only allowed for a loopback host")
    return uri


@dataclass(frozen=True)
class SpaRegistration:
    """A single-page application's app registration: its client id and the redirect URIs of its
    `spa` platform (authorization code flow with PKCE, token redemption by cross-origin requests)."""

    client_id: str
    redirect_uris: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_id", str(uuid.UUID(self.client_id)))
        if isinstance(self.redirect_uris, str):
            raise ValueError("redirect_uris is a sequence of URIs, not one string")
        uris = tuple(dict.fromkeys(check_redirect_uri(u) for u in self.redirect_uris))
        if not uris or len(uris) > MAX_REDIRECT_URIS:
            raise ValueError(f"a SPA registration has 1 to {MAX_REDIRECT_URIS} redirect URIs")
        object.__setattr__(self, "redirect_uris", uris)

    def origins(self) -> frozenset[str]:
        """The origins (scheme://host[:port]) of the redirect URIs: where the SPA runs."""
        return frozenset(f"{urlsplit(u).scheme}://{urlsplit(u).netloc}".lower() for u in self.redirect_uris)


def pairwise_subject(object_id: str, client_id: str) -> str:
    """The `sub` Entra gives a user in tokens for one application: stable, different per app."""
    digest = hashlib.sha256(f"{object_id.lower()}:{client_id.lower()}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")[:43]


def unique_token_id() -> str:
    """Entra's `uti` claim: an identifier of this token (22 base64url characters), so two tokens
    issued in the same second for the same grant still differ."""
    return secrets.token_urlsafe(16)[:22]


def id_token_claims(
    *,
    client_id: str,
    authority: str,
    tenant_id: str,
    object_id: str,
    username: str,
    display_name: str,
    nonce: str | None,
    lifetime_seconds: int = 3600,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of the v2.0 ID token a SPA receives (its `aud` is the SPA's own client id)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "aud": client_id,
        "iss": f"{authority.rstrip('/')}/{tenant_id}/v2.0",
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_seconds,
        "name": display_name,
        "oid": object_id,
        "preferred_username": username,
        "sub": pairwise_subject(object_id, client_id),
        "tid": tenant_id,
        "uti": unique_token_id(),
        "ver": "2.0",
    }
    if nonce:
        claims["nonce"] = nonce
    return claims


def api_token_claims(
    *,
    api: ApiRegistration,
    authority: str,
    tenant_id: str,
    roles: list[str],
    name: str | None,
    requested_resource: str | None = None,
    client_app_id: str | None = None,
    object_id: str | None = None,
    v1_issuer_host: str = GLOBAL_V1_ISSUER_HOST,
    lifetime_seconds: int = 3600,
    now: float | None = None,
    scopes: Sequence[str] | None = None,
    display_name: str | None = None,
) -> dict[str, Any]:
    """The claims of an access token for `api`, in the version its registration asks for.

    `name` is the signed-in user's UPN (a user token), or None for an app-only token (client
    credentials), whose caller is `client_app_id`. A user token issued through a delegated flow also
    carries `scopes` (`scp`, space-separated) and the user's `display_name` (`name`); its `sub` is
    pairwise (stable per user and API) when `object_id` is given.
    """
    issued = int(now if now is not None else time.time())
    version = api.version
    client_app = client_app_id or str(uuid.uuid4())
    v1_issuer = f"{v1_issuer_host}/{tenant_id}/"
    v2_issuer = f"{authority.rstrip('/')}/{tenant_id}/v2.0"
    claims: dict[str, Any] = {
        "aud": api.audience(requested_resource or api.app_id_uri),
        "iss": v1_issuer if version == "1.0" else v2_issuer,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_seconds,
        "tid": tenant_id,
        "oid": object_id or str(uuid.uuid4()),
        "sub": pairwise_subject(object_id, api.client_id) if object_id else secrets.token_hex(16),
        "roles": roles,
        "uti": unique_token_id(),
        "ver": version,
    }
    if scopes:
        claims["scp"] = " ".join(scopes)
    if display_name is not None:
        claims["name"] = display_name
    if version == "1.0":
        claims.update(appid=client_app, appidacr="1")
        if name is not None:
            claims.update(upn=name, unique_name=name)
    else:
        claims.update(azp=client_app, azpacr="1")
        if name is not None:
            claims["preferred_username"] = name
    return claims
