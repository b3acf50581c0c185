"""The one body decoder (shared.api.bodies): each hostile body is a 400, 413 or 415 problem, never an
exception; a body must be labelled JSON; YAML is loaded within bounds (shared.platform.yaml_bounded); `answer`
turns what a handler did not expect into a problem."""

from __future__ import annotations

import functools
import json
import sys

import pytest
import yaml

from shared.api.bodies import (
    MAX_JSON_BODY_BYTES,
    MAX_JSON_DEPTH,
    is_json_media_type,
    json_depth,
    parse_json_body,
    read_json_object,
)
from shared.api.events_api import CommentBody
from shared.api.problems import ApiProblem
from shared.api.responses import ApiResponse, answer
from shared.platform.ids import UnsafeStorageIdError
from shared.platform.yaml_bounded import YamlTooLargeError, load_yaml_bounded
from shared.rules.source import DEFAULT_RULES_FILE

JSON = {"Content-Type": "application/json"}

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)

HOSTILE_BODIES: dict[str, tuple[bytes, dict[str, str], int]] = {
    "nested arrays 3,000 deep": (b"[" * 3000 + b"]" * 3000, JSON, 400),
    "nested objects 3,000 deep": (b'{"a":' * 3000 + b"1" + b"}" * 3000, JSON, 400),
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, JSON, 413),
    "65 deep": (b'{"a":' * 65 + b"1" + b"}" * 65, JSON, 400),
    "20 MB": (b'{"text": "' + b"x" * (20 * 1024 * 1024) + b'"}', JSON, 413),
    # What a page on another site can send without a CORS preflight: each is refused.
    "text/plain": (b'{"text": "hi"}', {"Content-Type": "text/plain"}, 415),
    "form data": (b'{"text": "hi"}', {"content-type": "multipart/form-data; boundary=x"}, 415),
    "form-encoded JSON": (b'{"text": "hi"}', {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    "form-encoded fields": (b"text=hi", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    "no Content-Type": (b'{"text": "hi"}', {}, 415),
    "a blank Content-Type": (b'{"text": "hi"}', {"Content-Type": " "}, 415),
    "an empty form post": (b"", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    "an empty text/plain post": (b"  \n", {"Content-Type": "text/plain"}, 415),
    "20 MB form-encoded": (
        b"t=" + b"x" * (20 * 1024 * 1024),
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
    ),
    "json as a parameter": (b'{"text": "hi"}', {"Content-Type": "text/plain; type=application/json"}, 415),
    "json+ without a subtype": (b'{"text": "hi"}', {"Content-Type": "application/+json"}, 415),
    "json in another top-level type": (b'{"text": "hi"}', {"Content-Type": "text/json"}, 415),
    "yaml": (b"text: hi\n", {"Content-Type": "application/yaml"}, 415),
    "xml": (b"<text>hi</text>", {"Content-Type": "application/xml"}, 415),
    "latin-1 charset": (b'{"text": "hi"}', {"Content-Type": "application/json; charset=iso-8859-1"}, 415),
    "invalid UTF-8": (b'{"text": "\xff\xfe"}', JSON, 400),
    "overlong UTF-8": (b'{"text": "\xc0\xaf"}', JSON, 400),
    "UTF-16": ('{"text": "hi"}'.encode("utf-16"), JSON, 400),
    "byte order mark": (b'\xef\xbb\xbf{"text": "hi"}', JSON, 400),
    "duplicate keys": (b'{"text": "a", "text": "b"}', JSON, 400),
    "nested duplicate keys": (b'{"x": {"k": 1, "k": 1}}', JSON, 400),
    "top-level array": (b'[{"text": "hi"}]', JSON, 400),
    "top-level string": (b'"hi"', JSON, 400),
    "top-level number": (b"1", JSON, 400),
    "top-level null": (b"null", JSON, 400),
    "NaN": (b'{"text": NaN}', JSON, 400),
    "Infinity": (b'{"n": -Infinity}', JSON, 400),
    "a number past double range": (b'{"n": 1e400}', JSON, 400),
    "an integer of 5,000 digits": (b'{"n": ' + b"9" * 5000 + b"}", JSON, 400),
    "a lone surrogate": (b'{"text": "\\ud800"}', JSON, 400),
    "unterminated string": (b'{"text": "' + b'\\"' * 20_000, JSON, 400),
    "not JSON": (b"{text: hi}", JSON, 400),
    "trailing data": (b'{"text": "hi"} {}', JSON, 400),
    "a YAML bomb without a media type": (BILLION_LAUGHS.encode(), {}, 415),
    "a YAML bomb labelled JSON": (BILLION_LAUGHS.encode(), JSON, 400),
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_a_hostile_body_is_a_problem_with_the_right_status(name: str) -> None:
    body, headers, status = HOSTILE_BODIES[name]
    with pytest.raises(ApiProblem) as refused:
        read_json_object(body, headers)
    assert refused.value.status == status, refused.value.detail
    assert len(refused.value.detail) < 300  # the input is never echoed back


def test_the_depth_bound_is_checked_without_recursion() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # far below what a recursive check of 3,000 levels would need
    try:
        with pytest.raises(ApiProblem) as refused:
            read_json_object(b"[" * 3000 + b"]" * 3000, JSON, max_bytes=10_000)
    finally:
        sys.setrecursionlimit(limit)
    assert refused.value.status == 400
    assert "deeper than 64" in refused.value.detail
    assert json_depth('{"a": "[[[[{{{{", "b": [[1]]}', 10) == 3  # brackets inside strings do not count
    assert json_depth('{"a": "\\"[[[["}', 10) == 1


def test_well_formed_bodies_pass() -> None:
    assert read_json_object(b"", JSON) == {}
    # No body and no Content-Type (`curl -X POST`, requests.post(url)): nothing to label, so {}.
    assert read_json_object(b"", {}) == {}
    assert read_json_object(None, {}) == {}
    assert read_json_object(b" \r\n", {}) == {}
    assert read_json_object(b'{"text": "hi"}', {"content-type": "application/json"}) == {"text": "hi"}
    assert read_json_object(b'{"a": 1}', {"Content-Type": "application/merge-patch+json"}) == {"a": 1}
    assert read_json_object(b'{"a": 1}', {"Content-Type": 'application/json; charset="UTF-8"'}) == {"a": 1}
    assert read_json_object(b'{"a": 1}', {"Content-Type": "Application/JSON;charset=utf8"}) == {"a": 1}
    emoji = read_json_object(b'{"text": "\\ud83d\\ude00 \xc3\xa9"}', JSON)
    assert emoji == {"text": "\U0001f600 é"}
    at_limit = b'{"a":' * MAX_JSON_DEPTH + b"1" + b"}" * MAX_JSON_DEPTH
    assert read_json_object(at_limit, JSON)
    big = b'{"text": "' + b"x" * (MAX_JSON_BODY_BYTES - 12) + b'"}'
    assert len(read_json_object(big, JSON)["text"]) == MAX_JSON_BODY_BYTES - 12


def test_an_empty_body_is_refused_where_one_is_required() -> None:
    for headers in (JSON, {}):
        with pytest.raises(ApiProblem) as refused:
            read_json_object(b"", headers, required=True)
        assert refused.value.status == 400


@pytest.mark.parametrize(
    ("value", "is_json"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ('APPLICATION/JSON ; Charset="UTF-8"', True),
        ("application/problem+json", True),
        ("application/vnd.aoc.rule+json; charset=utf-8", True),
        ("application/json; charset=utf-16", False),
        ("application/json; charset=iso-8859-1", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("text/plain", False),
        ("text/json", False),
        ("application/jsonx", False),
        ("application/+json", False),
        ("application/json-patch", False),
        ("", False),
    ],
)
def test_only_json_media_types_in_utf8_are_json(value: str, is_json: bool) -> None:
    assert is_json_media_type(value) is is_json


def test_parse_json_body_names_the_fields_at_fault() -> None:
    assert parse_json_body(CommentBody, b'{"text": "seen"}', JSON).text == "seen"
    with pytest.raises(ApiProblem) as refused:
        parse_json_body(CommentBody, b'{"text": "", "colour": "red"}', JSON)
    assert refused.value.status == 400
    assert {e["field"] for e in refused.value.errors} == {"text", "colour"}


def test_yaml_is_loaded_within_bounds() -> None:
    shipped = load_yaml_bounded(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))
    assert shipped == yaml.safe_load(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))
    assert load_yaml_bounded("base: &b {x: 1}\nuse: [*b, *b]") == {"base": {"x": 1}, "use": [{"x": 1}] * 2}
    with pytest.raises(YamlTooLargeError, match="more than"):
        load_yaml_bounded(BILLION_LAUGHS)  # 9^9 nodes once expanded, refused from its events
    with pytest.raises(YamlTooLargeError, match="recursive"):
        load_yaml_bounded("a: &a [*a]")
    with pytest.raises(yaml.YAMLError):
        load_yaml_bounded("a:" + " [" * 200 + " ]" * 200)
    with pytest.raises(yaml.YAMLError):
        load_yaml_bounded("!!python/object/apply:os.system ['true']")


def test_answer_turns_unexpected_exceptions_into_problems() -> None:
    def raises(exc: Exception) -> ApiResponse:
        raise exc

    unsafe = answer("/api/alerts/%2E%2E", lambda: raises(UnsafeStorageIdError("..")))
    assert unsafe.status == 404
    assert json.loads(unsafe.body)["instance"] == "/api/alerts/%2E%2E"
    for exc in (RuntimeError("secret detail"), RecursionError(), KeyError("k")):
        response = answer("/api/x", functools.partial(raises, exc))
        assert response.status == 500
        assert response.media_type == "application/problem+json"
        problem = json.loads(response.body)
        assert problem["status"] == 500
        assert "secret" not in response.body
