"""Bearer token verification with a JWKS and keys made here, SWA principals and role mapping.

Tokens are minted with the tenant simulator's claims builder (devtools/simulator/signing.py), which
produces the two shapes Entra ID issues: v1.0 (`sts` issuer, `aud` App ID URI or client id) and v2.0
(`/v2.0` issuer, `aud` the client id).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devtools.simulator.signing import api_token_claims
from shared.api.auth import (
    ApiAudience,
    Authenticator,
    AuthError,
    EntraTokenVerifier,
    JwksCache,
    Role,
    principal_from_swa,
)
from shared.m365.cloud import CLOUD_NAMES, CLOUDS, CloudEndpoints
from tests.support.clock import ManualClock
from tests.support.principals import API_APP_ID_URI, API_CLIENT_ID, aoc_api, swa_principal

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"
OTHER_CLIENT_ID = "99999999-9999-4999-8999-999999999999"
GLOBAL = CLOUDS["global"]
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
ISSUED = int(NOW.timestamp())


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = _rsa()
ROGUE_KEY = _rsa()
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", **extra}


def _ec_jwk(kid: str) -> dict[str, Any]:
    return {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key())), "kid": kid, "use": "sig"}


class Harness:
    def __init__(self, cloud: CloudEndpoints = GLOBAL) -> None:
        self.cloud = cloud
        self.clock = ManualClock(NOW)
        self.keys: list[dict[str, Any]] = [_jwk(SIGNING_KEY, "key-1")]
        self.outage: Exception | None = None  # what the JWKS endpoint fails with, when it does
        self.served: Any = None  # a document served instead of the keys, when set
        self.fetch_calls = 0
        self.jwks = JwksCache(self.fetch, self.clock)
        self.verifier = EntraTokenVerifier(
            self.jwks, ApiAudience(API_CLIENT_ID, API_APP_ID_URI), [TENANT], cloud, self.clock
        )

    def fetch(self) -> Mapping[str, Any]:
        self.fetch_calls += 1
        if self.outage is not None:
            raise self.outage
        return self.served if self.served is not None else {"keys": list(self.keys)}

    def claims(
        self,
        version: Literal[1, 2] = 2,
        requested: str | None = None,
        tenant: str = TENANT,
        **changes: Any,
    ) -> dict[str, Any]:
        claims = api_token_claims(
            api=aoc_api(version),
            authority=self.cloud.v2_issuer_host,
            v1_issuer_host=self.cloud.v1_issuer_host,
            tenant_id=tenant,
            roles=["AOC.Analyst"],
            name="ana@contoso.com",
            requested_resource=requested,
            now=ISSUED,
        )
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        key: Any = SIGNING_KEY,
        kid: str = "key-1",
        algorithm: str = "RS256",
        version: Literal[1, 2] = 2,
        requested: str | None = None,
        **changes: Any,
    ) -> str:
        claims = self.claims(version, requested, **changes)
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def h() -> Harness:
    return Harness()


def _refused(h: Harness, token: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        h.verifier.verify(token)
    return caught.value


# --- The two real shapes, in every cloud --------------------------------------------------------------


@pytest.mark.parametrize("cloud", CLOUD_NAMES)
@pytest.mark.parametrize(
    ("version", "requested", "audience"),
    [
        (2, API_APP_ID_URI, API_CLIENT_ID),  # v2.0: aud is the client id, however it was asked for
        (2, API_CLIENT_ID, API_CLIENT_ID),
        (1, API_APP_ID_URI, API_APP_ID_URI),  # v1.0: aud is what the client asked for
        (1, API_CLIENT_ID, API_CLIENT_ID),
    ],
)
def test_real_v1_and_v2_tokens_pass_in_every_cloud(
    cloud: str, version: Literal[1, 2], requested: str, audience: str
) -> None:
    harness = Harness(CLOUDS[cloud])  # type: ignore[index]
    claims = harness.claims(version, requested)
    assert claims["aud"] == audience
    expected_issuer = {
        ("global", 1): f"https://sts.windows.net/{TENANT}/",
        ("usgov", 1): f"https://sts.windows.net/{TENANT}/",
        ("dod", 1): f"https://sts.windows.net/{TENANT}/",
        ("china", 1): f"https://sts.chinacloudapi.cn/{TENANT}/",
        ("global", 2): f"https://login.microsoftonline.com/{TENANT}/v2.0",
        ("usgov", 2): f"https://login.microsoftonline.us/{TENANT}/v2.0",
        ("dod", 2): f"https://login.microsoftonline.us/{TENANT}/v2.0",
        ("china", 2): f"https://login.partner.microsoftonline.cn/{TENANT}/v2.0",
    }[(cloud, version)]
    assert claims["iss"] == expected_issuer
    assert claims["ver"] == f"{version}.0"

    principal = harness.verifier.verify(harness.token(version=version, requested=requested))
    assert principal.auth == "entra"
    assert principal.tenant_id == TENANT
    assert principal.name == "ana@contoso.com"
    assert principal.has(Role.ANALYST)
    assert principal.has(Role.READER)
    assert not principal.has(Role.ADMIN)
    assert not principal.sees_sensitive


def test_an_app_only_token_is_named_by_its_client_app(h: Harness) -> None:
    v2 = h.token(preferred_username=None, azp="77777777-7777-4777-8777-777777777777")
    assert h.verifier.verify(v2).name == "77777777-7777-4777-8777-777777777777"
    v1 = h.token(version=1, upn=None, unique_name=None, appid="88888888-8888-4888-8888-888888888888")
    assert h.verifier.verify(v1).name == "88888888-8888-4888-8888-888888888888"


def test_a_client_id_only_configuration_accepts_both_versions() -> None:
    harness = Harness()
    harness.verifier.audience = ApiAudience(API_CLIENT_ID)
    assert harness.verifier.verify(harness.token(version=2)).auth == "entra"
    assert harness.verifier.verify(harness.token(version=1, requested=API_CLIENT_ID)).auth == "entra"
    assert _refused(harness, harness.token(version=1, requested=API_APP_ID_URI)).status == 401


# --- Shapes Entra never issues ------------------------------------------------------------------------

V1_ISSUER = f"https://sts.windows.net/{TENANT}/"
V2_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"

MISMATCHES: dict[str, dict[str, Any]] = {
    # The pair the simulator and the old tests minted: a v2.0 issuer with the App ID URI as audience.
    "v2 token with the App ID URI as aud": {"aud": API_APP_ID_URI},
    "v2 issuer, ver 1.0": {"ver": "1.0"},
    "v1 issuer, ver 2.0": {"iss": V1_ISSUER},
    "v1 issuer, ver 2.0, App ID URI": {"iss": V1_ISSUER, "aud": API_APP_ID_URI},
    "v1 issuer without its trailing slash": {"iss": V1_ISSUER.rstrip("/"), "ver": "1.0"},
    "v2 issuer with a trailing slash": {"iss": V2_ISSUER + "/"},
    "no ver": {"ver": None},
    "ver 3.0": {"ver": "3.0"},
    "ver as a number": {"ver": 2.0},
    "another cloud's v1 issuer": {"iss": f"https://sts.chinacloudapi.cn/{TENANT}/", "ver": "1.0"},
    "another cloud's v2 issuer": {"iss": f"https://login.microsoftonline.us/{TENANT}/v2.0"},
    "the issuer of another tenant": {"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"},
    "a tenant outside the allow-list": {
        "tid": OTHER_TENANT,
        "iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0",
    },
    "no tid": {"tid": None},
    "tid as a list": {"tid": [TENANT]},
    "another API's client id": {"aud": OTHER_CLIENT_ID},
    "aud as a list": {"aud": [API_CLIENT_ID]},
    "no aud": {"aud": None},
    "no iss": {"iss": None},
    "a v1 token for another App ID URI": {"iss": V1_ISSUER, "ver": "1.0", "aud": "api://someone-else"},
}


@pytest.mark.parametrize("case", MISMATCHES)
def test_every_mismatched_issuer_version_and_audience_is_refused(h: Harness, case: str) -> None:
    assert _refused(h, h.token(**MISMATCHES[case])).status == 401


# --- Times -----------------------------------------------------------------------------------------------


def _raw_token(claims: str, header: dict[str, Any] | None = None) -> str:
    """A token signed with the signing key whose payload is exactly `claims` (JSON text, which may hold
    NaN or Infinity) and whose header is `header` (anything pyjwt would refuse to write)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header_json = json.dumps(header or {"alg": "RS256", "kid": "key-1", "typ": "JWT"}).encode()
    signing_input = f"{b64(header_json)}.{b64(claims.encode())}"
    signature = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).sign(
        signing_input.encode(), SIGNING_KEY
    )
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "value",
    ["NaN", "Infinity", "-Infinity", '"1900000000"', "true", "null", "[1]", "{}", "1" + "0" * 400],
)
def test_exp_nbf_and_iat_must_be_finite_numbers(h: Harness, claim: str, value: str) -> None:
    claims = h.claims()
    claims[claim] = "__VALUE__"
    text = json.dumps(claims).replace('"__VALUE__"', value)
    assert _refused(h, _raw_token(text)).status == 401


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_exp_nbf_and_iat_are_required(h: Harness, claim: str) -> None:
    missing: dict[str, Any] = {claim: None}
    assert _refused(h, h.token(**missing)).status == 401


def test_float_times_are_numbers_too(h: Harness) -> None:
    assert h.verifier.verify(h.token(iat=ISSUED + 0.5, nbf=ISSUED - 0.5, exp=ISSUED + 3600.5)).auth == "entra"


def test_iat_in_the_future_beyond_the_skew_allowance_is_refused(h: Harness) -> None:
    assert h.verifier.verify(h.token(iat=ISSUED + 59, nbf=ISSUED)).auth == "entra"  # within 60 s
    assert _refused(h, h.token(iat=ISSUED + 61, nbf=ISSUED)).status == 401
    assert _refused(h, h.token(iat=ISSUED + 10 * 365 * 86400, nbf=ISSUED)).status == 401


def test_leeway_covers_small_clock_skew(h: Harness) -> None:
    assert h.verifier.verify(h.token(exp=ISSUED - 30)).auth == "entra"  # 30 s late: within 60 s
    assert _refused(h, h.token(exp=ISSUED - 90)).status == 401
    assert h.verifier.verify(h.token(nbf=ISSUED + 30)).auth == "entra"
    assert _refused(h, h.token(nbf=ISSUED + 90)).status == 401


# --- Roles -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("roles", ["AOC.Admin", {"AOC.Admin": True}, 1, True])
def test_a_roles_claim_that_is_not_a_list_is_forbidden(h: Harness, roles: Any) -> None:
    assert _refused(h, h.token(roles=roles)).status == 403


def test_non_string_roles_in_the_list_are_ignored(h: Harness) -> None:
    principal = h.verifier.verify(h.token(roles=[{"AOC.Admin": 1}, ["AOC.Admin"], 7, "AOC.Reader"]))
    assert principal.roles == frozenset({"AOC.Reader"})
    assert _refused(h, h.token(roles=[{"x": 1}])).status == 403
    assert _refused(h, h.token(roles=None)).status == 403


# --- Keys: only RSA signature keys ----------------------------------------------------------------------


def test_a_kid_naming_an_ec_key_is_a_401(h: Harness) -> None:
    h.keys.append(_ec_jwk("ec-1"))
    assert _refused(h, h.token(kid="ec-1")).status == 401  # RS256 token, kid of the EC key
    assert _refused(h, h.token(key=EC_KEY, kid="ec-1", algorithm="ES256")).status == 401
    assert h.verifier.verify(h.token()).auth == "entra"  # the RSA key in the same document still works


def test_a_kid_naming_a_symmetric_key_is_a_401(h: Harness) -> None:
    secret = b"0123456789abcdef0123456789abcdef"
    h.keys.append({"kty": "oct", "kid": "oct-1", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()})
    assert _refused(h, h.token(kid="oct-1")).status == 401
    assert _refused(h, h.token(key=secret, kid="oct-1", algorithm="HS256")).status == 401


def test_only_rsa_signature_keys_verify_tokens(h: Harness) -> None:
    without_use = _jwk(ROGUE_KEY, "no-use")
    del without_use["use"]
    h.keys += [_jwk(ROGUE_KEY, "enc-1", use="enc"), _jwk(ROGUE_KEY, "rs512-1", alg="RS512"), without_use]
    assert _refused(h, h.token(key=ROGUE_KEY, kid="enc-1")).status == 401  # an encryption key
    assert _refused(h, h.token(key=ROGUE_KEY, kid="rs512-1")).status == 401  # a key for another algorithm
    assert h.verifier.verify(h.token(key=ROGUE_KEY, kid="no-use")).auth == "entra"  # `use` absent: fine
    assert h.fetch_calls == 1  # every key above came from the one document


def test_only_usable_keys_are_kept_from_a_messy_document() -> None:
    document = {
        "keys": [
            _jwk(SIGNING_KEY, "good"),
            _ec_jwk("ec"),
            _jwk(ROGUE_KEY, "enc", use="enc"),
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": "RSA", "n": "x", "e": "AQAB"},  # no kid
            "not a key",
            {**_jwk(ROGUE_KEY, "x"), "kid": 7},
        ]
    }
    assert set(JwksCache.usable_keys(document)) == {"good"}
    assert JwksCache.usable_keys({"keys": "nope"}) == {}
    assert JwksCache.usable_keys([]) == {}  # type: ignore[arg-type]


# --- Forgeries ------------------------------------------------------------------------------------------


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
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _tampered(h: Harness) -> str:
    header, payload, signature = h.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["AOC.Admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


FORGERIES: dict[str, tuple[Callable[[Harness], str], int]] = {
    "alg_none": (lambda h: _unsigned(h.claims(roles=["AOC.Admin"])), 401),
    "hs256_with_public_key": (_hs256_with_public_key, 401),
    "expired": (lambda h: h.token(exp=ISSUED - 7200, nbf=ISSUED - 10800, iat=ISSUED - 10800), 401),
    "not_yet_valid": (lambda h: h.token(nbf=ISSUED + 3600, exp=ISSUED + 7200), 401),
    "unknown_kid": (lambda h: h.token(kid="key-404"), 401),
    "kid_not_a_string": (lambda h: _raw_token(json.dumps(h.claims()), {"alg": "RS256", "kid": 5}), 401),
    "alg_not_a_string": (
        lambda h: _raw_token(json.dumps(h.claims()), {"alg": ["RS256"], "kid": "key-1"}),
        401,
    ),
    "header_not_an_object": (lambda h: _raw_token(json.dumps(h.claims()), ["RS256"]), 401),  # type: ignore[arg-type]
    "huge_kid": (lambda h: h.token(kid="k" * 5000), 401),
    "signed_by_another_key": (lambda h: h.token(key=ROGUE_KEY), 401),
    "tampered_payload": (_tampered, 401),
    "no_role": (lambda h: h.token(roles=["Some.Other.Role"]), 403),
    "not_a_jwt": (lambda h: "not-a-token", 401),
    "payload_not_an_object": (lambda h: _raw_token("[1, 2, 3]"), 401),
    "payload_not_json": (lambda h: _raw_token("{not json"), 401),
}


@pytest.mark.parametrize("case", FORGERIES)
def test_every_forgery_and_misuse_is_refused(h: Harness, case: str) -> None:
    make, status = FORGERIES[case]
    assert _refused(h, make(h)).status == status


# --- The JWKS cache: refresh, rotation, outage ------------------------------------------------------------


def test_an_unknown_kid_refetches_the_keys_but_at_most_every_five_minutes(h: Harness) -> None:
    h.verifier.verify(h.token())
    assert h.fetch_calls == 1
    for _ in range(20):
        _refused(h, h.token(kid="forged"))
    assert h.fetch_calls == 1  # within five minutes of the last fetch: no refetch

    h.keys.append(_jwk(ROGUE_KEY, "key-2"))  # the tenant rolls over to a new key
    h.clock.advance(301)
    assert h.verifier.verify(h.token(key=ROGUE_KEY, kid="key-2")).auth == "entra"
    assert h.fetch_calls == 2


def test_keys_are_refreshed_after_twelve_hours(h: Harness) -> None:
    assert h.jwks.key("key-1") is not None
    h.clock.advance(12 * 3600 - 1)
    assert h.jwks.key("key-1") is not None
    assert h.fetch_calls == 1
    h.clock.advance(1)
    assert h.jwks.key("key-1") is not None
    assert h.fetch_calls == 2


def test_an_outage_keeps_the_cached_keys_for_24_hours_past_their_refresh_time(h: Harness) -> None:
    h.verifier.verify(h.token())  # fetched at NOW
    h.outage = ConnectionError("login.microsoftonline.com is unreachable")
    h.clock.advance(12 * 3600)  # refresh due: it fails, the cached keys still verify
    due = ISSUED + 12 * 3600
    assert h.verifier.verify(h.token(iat=due, nbf=due, exp=due + 3600)).auth == "entra"
    assert h.fetch_calls == 2
    for _ in range(10):  # back-off: no new attempt until 30 s have passed
        assert h.verifier.verify(h.token(iat=due, nbf=due, exp=due + 3600)).auth == "entra"
    assert h.fetch_calls == 2

    h.clock.advance(24 * 3600 - 1)  # one second before the cached keys give out
    late = ISSUED + 36 * 3600 - 1
    assert h.verifier.verify(h.token(iat=late, nbf=late, exp=late + 3600)).auth == "entra"
    h.clock.advance(1)
    assert _refused(h, h.token(iat=late, nbf=late, exp=late + 3600)).status == 401

    h.outage = None  # the endpoint is back: the next attempt after the back-off restores service
    h.clock.advance(600)
    back = late + 601
    assert h.verifier.verify(h.token(iat=back, nbf=back, exp=back + 3600)).auth == "entra"


def test_the_back_off_doubles_and_is_capped(h: Harness) -> None:
    h.verifier.verify(h.token())
    h.outage = ConnectionError("login.microsoftonline.com is unreachable")
    h.clock.advance(12 * 3600)
    attempts_at: list[int] = []
    for second in range(0, 3600):
        before = h.fetch_calls
        h.jwks.key("key-1")
        if h.fetch_calls > before:
            attempts_at.append(second)
        h.clock.advance(1)
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    assert gaps[:5] == [30, 60, 120, 240, 480]
    assert set(gaps[5:]) == {600}


def test_a_week_long_outage_neither_overflows_the_back_off_nor_raises(h: Harness) -> None:
    h.verifier.verify(h.token())
    h.outage = ConnectionError("down")
    found_at_hour: dict[int, bool] = {}
    for step in range(1, 7 * 24 * 6 + 1):  # every 10 minutes for a week
        h.clock.advance(600)
        found_at_hour[step // 6] = h.jwks.key("key-1") is not None
    # Attempts every 10 minutes from the 12th hour on, each failing, none raising.
    assert h.fetch_calls == 1 + (7 * 24 - 12) * 6 + 1
    assert all(found_at_hour[hour] for hour in range(36))  # cached keys until 12 h + 24 h
    assert not any(found_at_hour[hour] for hour in range(36, 7 * 24 + 1))


@pytest.mark.parametrize(
    "document", [{"keys": []}, {"keys": "x"}, {"nope": 1}, {"keys": [_ec_jwk("ec")]}, [1]]
)
def test_a_document_without_a_usable_key_is_an_outage_not_a_wipe(h: Harness, document: Any) -> None:
    h.verifier.verify(h.token())
    h.served = document
    h.clock.advance(12 * 3600)
    fresh = ISSUED + 12 * 3600
    assert h.verifier.verify(h.token(iat=fresh, nbf=fresh, exp=fresh + 3600)).auth == "entra"


def test_an_unknown_kid_during_an_outage_is_a_401(h: Harness) -> None:
    h.verifier.verify(h.token())
    h.outage = ConnectionError("login.microsoftonline.com is unreachable")
    h.clock.advance(301)
    assert _refused(h, h.token(key=ROGUE_KEY, kid="key-new")).status == 401
    assert h.fetch_calls == 2  # it tried once
    for _ in range(5):
        assert _refused(h, h.token(key=ROGUE_KEY, kid="key-new")).status == 401
    assert h.fetch_calls == 2  # and backs off


def test_an_outage_at_cold_start_is_a_401(h: Harness) -> None:
    h.outage = ConnectionError("login.microsoftonline.com is unreachable")
    assert _refused(h, h.token()).status == 401
    assert _refused(h, h.token()).status == 401
    assert h.fetch_calls == 1  # backing off
    h.outage = None
    h.clock.advance(30)
    assert h.verifier.verify(h.token()).auth == "entra"


@pytest.mark.parametrize("error", [ValueError("not json"), TimeoutError("read timed out"), KeyError("keys")])
def test_any_fetch_failure_is_an_outage_never_a_500(h: Harness, error: Exception) -> None:
    h.outage = error
    assert _refused(h, h.token()).status == 401


class _GatedFetch:
    """A JWKS endpoint that answers only when the test opens the gate."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.calls = 0
        self.entered = threading.Event()
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def __call__(self) -> Mapping[str, Any]:
        with self._lock:
            self.calls += 1
        self.entered.set()
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return {"keys": self.keys}


def test_one_refresh_in_flight_while_other_callers_use_the_cached_keys() -> None:
    clock = ManualClock(NOW)
    fetch = _GatedFetch([_jwk(SIGNING_KEY, "key-1")])
    cache = JwksCache(fetch, clock)
    fetch.gate.set()
    assert cache.key("key-1") is not None
    fetch.gate.clear()
    fetch.entered.clear()
    clock.advance(12 * 3600)  # refresh due

    refresher = threading.Thread(target=cache.key, args=("key-1",))
    refresher.start()
    assert fetch.entered.wait(timeout=30)  # the refresh is in flight and blocked
    results: list[bool] = []
    lock = threading.Lock()

    def verify() -> None:
        found = cache.key("key-1") is not None
        with lock:
            results.append(found)

    others = [threading.Thread(target=verify) for _ in range(16)]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(timeout=30)
    # Every other caller finished while the refresh was still blocked, with the cached key.
    assert results == [True] * 16
    assert fetch.calls == 2
    fetch.gate.set()
    refresher.join(timeout=30)
    assert not refresher.is_alive()
    assert fetch.calls == 2


def test_one_refresh_at_cold_start_however_many_callers_wait() -> None:
    clock = ManualClock(NOW)
    fetch = _GatedFetch([_jwk(SIGNING_KEY, "key-1")])
    cache = JwksCache(fetch, clock)
    barrier = threading.Barrier(16)
    results: list[bool] = []
    lock = threading.Lock()

    def verify() -> None:
        barrier.wait(timeout=30)
        found = cache.key("key-1") is not None
        with lock:
            results.append(found)

    threads = [threading.Thread(target=verify) for _ in range(16)]
    for thread in threads:
        thread.start()
    assert fetch.entered.wait(timeout=30)
    fetch.gate.set()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [True] * 16
    assert fetch.calls == 1


# --- SWA principals and mode precedence -----------------------------------------------------------------


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
