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
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

TokenVersion = Literal["1.0", "2.0"]
GLOBAL_V1_ISSUER_HOST = "https://sts.windows.net"


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_id", str(uuid.UUID(self.client_id)))
        if self.access_token_version not in (1, 2):
            raise ValueError("access_token_version is 1 or 2")

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
) -> dict[str, Any]:
    """The claims of an access token for `api`, in the version its registration asks for.

    `name` is the signed-in user's UPN (a user token), or None for an app-only token (client
    credentials), whose caller is `client_app_id`.
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
        "sub": secrets.token_hex(16),
        "roles": roles,
        "ver": version,
    }
    if version == "1.0":
        claims.update(appid=client_app, appidacr="1")
        if name is not None:
            claims.update(upn=name, unique_name=name)
    else:
        claims.update(azp=client_app, azpacr="1")
        if name is not None:
            claims["preferred_username"] = name
    return claims
