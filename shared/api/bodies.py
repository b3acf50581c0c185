"""Request bodies: one decoder for every route that takes JSON.

`read_json_object` answers a hostile body with a problem, never an exception the route did not expect:
415 for a body not labelled JSON, 413 above the route's size cap, 400 for invalid UTF-8, invalid JSON,
`NaN` / `Infinity`, duplicate keys, a lone surrogate, nesting deeper than `MAX_JSON_DEPTH` (measured
before parsing, so the recursive parser never sees it) or a top level that is not an object.

A body must say it is JSON (`application/json` or `application/*+json`, UTF-8 or no charset). A browser
sends `application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain` or no Content-Type at all
cross-site without a CORS preflight; refusing those keeps a page on another site from driving a write
with the caller's cookies (the platform's sign-in in SWA mode). Sending `application/json` from a page
needs a preflight, which shared.api.cors answers only for the configured origins.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.api.problems import ApiProblem, bad_request, from_validation_error

M = TypeVar("M", bound=BaseModel)

MAX_JSON_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 64
# application/json, or a type with the +json structured syntax suffix (RFC 6839), e.g. merge-patch+json
JSON_MEDIA_TYPE = re.compile(r"application/(?:json|[a-z0-9][a-z0-9!#$&^_.+-]*\+json)")
UTF8_CHARSETS = frozenset({"utf-8", "utf8"})

_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|"', re.S)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _InvalidJsonError(ValueError):
    pass


class _TooDeepError(_InvalidJsonError):
    pass


def too_large(limit: int) -> ApiProblem:
    return ApiProblem(413, "Content Too Large", f"the body may be at most {limit} bytes", kind="too-large")


def unsupported_media_type(media_type: str | None) -> ApiProblem:
    named = "a body without a Content-Type" if media_type is None else repr(media_type[:100])
    return ApiProblem(
        415,
        "Unsupported Media Type",
        f"send the body as Content-Type: application/json (UTF-8), not {named}",
        kind="unsupported-media-type",
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def is_json_media_type(value: str) -> bool:
    """`application/json` or `application/*+json`, with no charset or UTF-8 (RFC 8259 §8.1)."""
    media_type, *parameters = (part.strip() for part in value.split(";"))
    if JSON_MEDIA_TYPE.fullmatch(media_type.lower()) is None:
        return False
    for parameter in parameters:
        name, _, raw = parameter.partition("=")
        if name.strip().lower() == "charset" and raw.strip().strip('"').lower() not in UTF8_CHARSETS:
            return False
    return True


def _check_media_type(headers: Mapping[str, str], *, empty: bool) -> None:
    """415 unless the body is labelled JSON. An empty body may come without a Content-Type (a bare
    `curl -X POST`); one labelled anything else (an empty HTML form post) is still refused."""
    value = _header(headers, "Content-Type")
    if value is None or not value.strip():
        if empty:
            return
        raise unsupported_media_type(None)
    if not is_json_media_type(value):
        raise unsupported_media_type(value.strip())


def json_depth(text: str, limit: int) -> int:
    """How deeply arrays and objects nest in `text` (strings skipped), counting no further than
    `limit` + 1. Linear time, no recursion. _InvalidJsonError for an unterminated string."""
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(text):
        symbol = token.group()
        if symbol == '"':
            raise _InvalidJsonError("unterminated string")
        if symbol in ("[", "{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif symbol in ("]", "}"):
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _InvalidJsonError(f"the key {key[:80]!r} appears twice in one object")
        document[key] = value
    return document


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _InvalidJsonError("a number is out of range")
    return value


def _not_json(name: str) -> Any:
    raise _InvalidJsonError(f"{name} is not JSON")


def parse_json(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON (RFC 8259): ValueError for anything else, for duplicate keys and deep nesting."""
    if json_depth(text, max_depth) > max_depth:
        raise _TooDeepError(f"the body nests deeper than {max_depth} levels")
    try:
        value = json.loads(
            text, object_pairs_hook=_unique_keys, parse_float=_finite, parse_constant=_not_json
        )
    except RecursionError:  # not reachable after the depth check; kept so it can never escape
        raise _TooDeepError(f"the body nests deeper than {max_depth} levels") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _InvalidJsonError("the body holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None
    return value


def read_json_object(
    body: bytes | None,
    headers: Mapping[str, str],
    *,
    max_bytes: int = MAX_JSON_BODY_BYTES,
    required: bool = False,
) -> dict[str, Any]:
    """The body as a JSON object. An empty body is `{}` unless `required` (then a 400).

    415 for a body not labelled JSON (see `_check_media_type`), 413 above `max_bytes`, 400 for anything
    that is not one UTF-8 JSON object within the bounds above."""
    body = body or b""
    empty = not body.strip()
    _check_media_type(headers, empty=empty)
    if empty:
        if required:
            raise bad_request("a JSON body is required", field="body")
        return {}
    if len(body) > max_bytes:
        raise too_large(max_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the body is not valid UTF-8", field="body") from None
    try:
        document = parse_json(text)
    except (_TooDeepError, RecursionError):
        raise bad_request(f"the body nests deeper than {MAX_JSON_DEPTH} levels", field="body") from None
    except _InvalidJsonError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}", field="body") from None
    except ValueError:
        raise bad_request("the body is not valid JSON", field="body") from None
    if not isinstance(document, dict):
        raise bad_request("the body must be a JSON object", field="body")
    return document


def parse_json_body(
    model: type[M], body: bytes | None, headers: Mapping[str, str], *, max_bytes: int = MAX_JSON_BODY_BYTES
) -> M:
    """The body validated as `model`; every refusal a problem (400 naming the fields, 413, 415)."""
    document = read_json_object(body, headers, max_bytes=max_bytes)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise from_validation_error(exc, location="body") from None
