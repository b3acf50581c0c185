"""Continuation tokens: round trip, and a 400 for forged, edited, truncated or foreign tokens."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from shared.api.paging import ContinuationSigner, iso_time_or_none, parse_query_time, query_hash
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


class SinceQuery(BaseModel):
    since: str | None = None

    _since = field_validator("since")(iso_time_or_none)


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-13-01T00:00:00Z",
        "",
        "0001-01-02T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:00:00-14:00",
        "1969-12-31T23:59:59Z",
    ],
)
def test_unreadable_or_out_of_range_times_are_a_validation_error(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SinceQuery.model_validate({"since": value})
    assert caught.value.errors()[0]["loc"] == ("since",)


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2026-11-20T12:00:00+02:00", "2026-11-20T10:00:00+00:00"),
        ("2026-11-20T12:00:00", "2026-11-20T12:00:00+00:00"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59+00:00"),
    ],
)
def test_readable_times_in_range_are_accepted_as_utc(value: str, utc: str) -> None:
    assert parse_query_time(value).isoformat() == utc
    assert SinceQuery.model_validate({"since": value}).since == value
