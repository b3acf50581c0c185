"""The tenant's token-signing key: a JWKS endpoint, and user or app tokens for the AOC API.

Real Entra ID signs access tokens with RS256 keys published at
`{authority}/{tenant}/discovery/v2.0/keys`; the API verifies them against that document. The
simulator does the same with a key made at start-up, so the API's Entra mode runs end to end.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


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


def api_token_claims(
    *,
    authority: str,
    tenant_id: str,
    audience: str,
    roles: list[str],
    name: str,
    object_id: str | None = None,
    lifetime_seconds: int = 3600,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a v2.0 access token for an app-role-protected API."""
    issued = int(now if now is not None else time.time())
    return {
        "aud": audience,
        "iss": f"{authority}/{tenant_id}/v2.0",
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_seconds,
        "tid": tenant_id,
        "oid": object_id or str(uuid.uuid4()),
        "sub": secrets.token_hex(16),
        "preferred_username": name,
        "roles": roles,
        "ver": "2.0",
    }
