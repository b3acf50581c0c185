"""Bearer token verification with a JWKS and keys made here, SWA principals and role mapping."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.api.auth import (
    Authenticator,
    AuthError,
    EntraTokenVerifier,
    JwksCache,
    Role,
    principal_from_swa,
)
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"
AUTHORITY = "https://login.microsoftonline.com"
AUDIENCE = "api://aoc-functions"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = _rsa()
ROGUE_KEY = _rsa()


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


class Harness:
    def __init__(self) -> None:
        self.clock = ManualClock(NOW)
        self.keys = [_jwk(SIGNING_KEY, "key-1")]
        self.jwks = JwksCache(lambda: {"keys": list(self.keys)}, self.clock)
        self.verifier = EntraTokenVerifier(self.jwks, [AUDIENCE], [TENANT], AUTHORITY, self.clock)

    def claims(self, **changes: Any) -> dict[str, Any]:
        issued = int(NOW.timestamp())
        claims = {
            "aud": AUDIENCE,
            "iss": f"{AUTHORITY}/{TENANT}/v2.0",
            "tid": TENANT,
            "oid": "33333333-3333-3333-3333-333333333333",
            "preferred_username": "ana@contoso.com",
            "roles": ["AOC.Analyst"],
            "iat": issued,
            "nbf": issued,
            "exp": issued + 3600,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, key: rsa.RSAPrivateKey = SIGNING_KEY, kid: str = "key-1", **changes: Any) -> str:
        return jwt.encode(self.claims(**changes), key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def h() -> Harness:
    return Harness()


def _refused(h: Harness, token: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        h.verifier.verify(token)
    return caught.value


def test_a_valid_v2_token_gives_the_caller_and_implied_roles(h: Harness) -> None:
    principal = h.verifier.verify(h.token())
    assert principal.name == "ana@contoso.com"
    assert principal.tenant_id == TENANT
    assert principal.has(Role.ANALYST)
    assert principal.has(Role.READER)
    assert not principal.has(Role.ADMIN)
    assert not principal.sees_sensitive


def test_a_v1_issuer_is_accepted(h: Harness) -> None:
    assert h.verifier.verify(h.token(iss=f"https://sts.windows.net/{TENANT}/")).auth == "entra"


def _unsigned(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'key-1'})}.{b64(claims)}."


def _hs256_with_public_key(h: Harness) -> str:
    public_pem = SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": "key-1", "typ": "JWT"}
    signing_input = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in (header, h.claims())
    )
    import hashlib
    import hmac

    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _tampered(h: Harness) -> str:
    header, payload, signature = h.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["AOC.Admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("alg_none", 401),
        ("hs256_with_public_key", 401),
        ("expired", 401),
        ("not_yet_valid", 401),
        ("wrong_audience", 401),
        ("wrong_issuer", 401),
        ("tenant_not_allowed", 401),
        ("unknown_kid", 401),
        ("signed_by_another_key", 401),
        ("tampered_payload", 401),
        ("no_role", 403),
        ("not_a_jwt", 401),
    ],
)
def test_every_forgery_and_misuse_is_refused(h: Harness, case: str, status: int) -> None:
    hour = 3600
    issued = int(NOW.timestamp())
    tokens = {
        "alg_none": lambda: _unsigned(h.claims(roles=["AOC.Admin"])),
        "hs256_with_public_key": lambda: _hs256_with_public_key(h),
        "expired": lambda: h.token(exp=issued - 2 * hour, nbf=issued - 3 * hour, iat=issued - 3 * hour),
        "not_yet_valid": lambda: h.token(nbf=issued + hour, exp=issued + 2 * hour),
        "wrong_audience": lambda: h.token(aud="api://someone-else"),
        "wrong_issuer": lambda: h.token(iss=f"{AUTHORITY}/{OTHER_TENANT}/v2.0"),
        "tenant_not_allowed": lambda: h.token(tid=OTHER_TENANT, iss=f"{AUTHORITY}/{OTHER_TENANT}/v2.0"),
        "unknown_kid": lambda: h.token(kid="key-404"),
        "signed_by_another_key": lambda: h.token(key=ROGUE_KEY),
        "tampered_payload": lambda: _tampered(h),
        "no_role": lambda: h.token(roles=["Some.Other.Role"]),
        "not_a_jwt": lambda: "not-a-token",
    }
    assert _refused(h, tokens[case]()).status == status


def test_leeway_covers_small_clock_skew(h: Harness) -> None:
    issued = int(NOW.timestamp())
    assert h.verifier.verify(h.token(exp=issued - 30)).auth == "entra"  # 30 s late: within 60 s
    assert _refused(h, h.token(exp=issued - 90)).status == 401


def test_an_unknown_kid_refetches_the_keys_but_at_most_every_five_minutes(h: Harness) -> None:
    h.verifier.verify(h.token())
    assert h.jwks.fetches == 1
    for _ in range(20):
        _refused(h, h.token(kid="forged"))
    assert h.jwks.fetches == 1  # within five minutes of the last fetch: no refetch

    h.keys.append(_jwk(ROGUE_KEY, "key-2"))  # the tenant rolls over to a new key
    h.clock.advance(301)
    assert h.verifier.verify(h.token(key=ROGUE_KEY, kid="key-2")).auth == "entra"
    assert h.jwks.fetches == 2


def test_a_forged_swa_principal_is_ignored_when_swa_mode_is_off(h: Harness) -> None:
    authenticator = Authenticator(verifier=h.verifier, swa_enabled=False)
    with pytest.raises(AuthError) as caught:
        authenticator.authenticate({"x-ms-client-principal": swa_principal(["admin", "authenticated"])})
    assert caught.value.status == 401


def test_swa_roles_map_onto_ours_when_swa_mode_is_on(h: Harness) -> None:
    authenticator = Authenticator(verifier=None, swa_enabled=True)
    principal = authenticator.authenticate(
        {"X-MS-CLIENT-PRINCIPAL": swa_principal(["authenticated", "analyst", "privacy"])}
    )
    assert principal.auth == "swa"
    assert principal.has(Role.ANALYST)
    assert principal.has(Role.READER)
    assert principal.sees_sensitive
    with pytest.raises(AuthError) as caught:
        principal_from_swa(swa_principal(["authenticated"]))
    assert caught.value.status == 403
    with pytest.raises(AuthError):
        principal_from_swa("%%%not-base64%%%")


def test_bearer_takes_precedence_and_bad_schemes_are_refused(h: Harness) -> None:
    authenticator = Authenticator(verifier=h.verifier, swa_enabled=True, key_roles=frozenset({"AOC.Admin"}))
    assert authenticator.authenticate({"Authorization": f"Bearer {h.token()}"}).auth == "entra"
    with pytest.raises(AuthError):
        authenticator.authenticate({"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert authenticator.authenticate({}).auth == "key"  # function-key mode: the host checked the key
    with pytest.raises(AuthError) as caught:
        Authenticator(verifier=h.verifier, swa_enabled=False).authenticate({})
    assert caught.value.status == 401
