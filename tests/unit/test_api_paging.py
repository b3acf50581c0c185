"""Continuation tokens: round trip, and a 400 for forged, edited, truncated or foreign tokens."""

from __future__ import annotations

import base64
import json

import pytest

from shared.api.paging import ContinuationSigner, query_hash
from shared.api.problems import ApiProblem

SIGNER = ContinuationSigner(b"0123456789abcdef-test-secret")
QUERY = query_hash({"service": ["Exchange"], "page_size": 50})
POSITION = {"month": "2026-11", "timestamp": "2026-11-20T10:00:00.000Z", "id": "o365:abc"}


def test_a_token_round_trips_for_its_own_query() -> None:
    token = SIGNER.encode(QUERY, POSITION)
    assert SIGNER.decode(token, QUERY) == POSITION


def _edited(token: str) -> str:
    body, signature = token.split(".")
    document = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    document["p"]["timestamp"] = "2030-01-01T00:00:00.000Z"
    edited = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    return f"{edited}.{signature}"


@pytest.mark.parametrize(
    "make",
    [
        lambda t: _edited(t),
        lambda t: t[:-3],
        lambda t: t.split(".")[0],
        lambda t: "not-a-token",
        lambda t: "",
        lambda t: ContinuationSigner(b"another-secret-of-16+").encode(QUERY, POSITION),
        lambda t: SIGNER.encode(query_hash({"service": ["Teams"]}), POSITION),
    ],
    ids=["edited", "truncated", "unsigned", "garbage", "empty", "other-secret", "other-query"],
)
def test_bad_tokens_are_a_400_naming_the_parameter(make: object) -> None:
    token = make(SIGNER.encode(QUERY, POSITION))  # type: ignore[operator]
    with pytest.raises(ApiProblem) as caught:
        SIGNER.decode(token, QUERY)
    assert caught.value.status == 400
    assert caught.value.body()["errors"][0]["field"] == "continuation"


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        ContinuationSigner(b"short")
