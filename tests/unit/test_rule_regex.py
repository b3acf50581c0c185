"""The RE2 adapter behind rule regexes (shared/rules/regex.py): `re`'s meaning on the common syntax, the
Python spellings it rewrites, the patterns it refuses and how a refusal reaches an API caller."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.api.rules_api import invalid_rule
from shared.rules.model import RuleError, parse_rule
from shared.rules.regex import MAX_PROGRAM_SIZE, LinearRegex, RegexError, check_rule_regex, to_re2_syntax

# Pieces of patterns whose meaning `re` and RE2 share once \w, \d, \s, \b are ASCII (re.ASCII) and the
# text holds no newline (RE2's `$` is end of text; `re`'s also matches before a final newline). Not
# POSIX classes: RE2 reads `[[:digit:]]` as a digit, `re` as the set `[:dgit` then `]`.
FRAGMENTS = [
    "a",
    "b",
    "1",
    ".",
    "a*",
    "b+?",
    "(a|b1)",
    "[ab]",
    "[^a]",
    "[]a]",
    r"\d",
    r"\w+",
    r"\s",
    r"\b",
    "^",
    "$",
    r"\Z",
    r"\A",
    "a{,2}",
    "b{2,}",
    "(?:ab){1,3}",
    r"\u0061",
    r"\U00000062",
    r"\{,1}",
    "[{,1}]",
]
TEXT = st.text(alphabet="ab1 _{},é", max_size=12)


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(
    fragments=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=5),
    text=TEXT,
    fold=st.booleans(),
)
def test_search_agrees_with_re_on_the_shared_syntax(fragments: list[str], text: str, fold: bool) -> None:
    pattern = "".join(fragments)
    flags = re.ASCII | (re.IGNORECASE if fold else 0)
    expected = re.search(pattern, text, flags) is not None
    assert LinearRegex(pattern, case_sensitive=not fold).search(text) is expected, to_re2_syntax(pattern)


@pytest.mark.parametrize(
    ("python", "re2"),
    [
        (r"end\Z", r"end\z"),
        (r"\\Z", r"\\Z"),  # an escaped backslash, then Z
        (r"caf\u00e9", r"caf\x{00e9}"),
        (r"\U0001F600", r"\x{0001F600}"),
        (r"\u00g1", r"\u00g1"),  # not four hex digits: left for RE2 to refuse
        ("a{,3}", "a{0,3}"),
        ("a{,}", "a{0,}"),
        ("a{,3", "a{,3"),
        ("[{,3}]", "[{,3}]"),
        ("[]{,3}]", "[]{,3}]"),
        ("[^]{,3}]", "[^]{,3}]"),
        ("[[:alpha:]{,3}]", "[[:alpha:]{,3}]"),
        ("[[:alpha:]]{,3}", "[[:alpha:]]{0,3}"),
        (r"\{,3}", r"\{,3}"),
    ],
)
def test_python_spellings_are_rewritten_outside_character_classes(python: str, re2: str) -> None:
    assert to_re2_syntax(python) == re2


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", r"backreferences such as \1 are not supported"),
        ("(?P<x>a)(?P=x)", "backreferences such as (?P=name) are not supported"),
        ("a(?=b)", "lookahead (?=...) is not supported"),
        ("a(?!b)", "lookahead (?!...) is not supported"),
        ("(?<=a)b", "lookbehind (?<=...) is not supported"),
        ("(?<!a)b", "lookbehind (?<!...) is not supported"),
        ("(?>a+)b", "atomic groups (?>...) are not supported"),
        ("a*+b", "possessive quantifiers"),
        ("(?x) a b", "verbose mode (?x) is not supported"),
        ("a{1001}", "counted repetition goes up to {1000}"),
        ("(a", "missing )"),
        ("x.{1000}y", f"more than {MAX_PROGRAM_SIZE}"),
        ("\ud800", "valid Unicode text"),
    ],
)
def test_refused_patterns_say_why(pattern: str, reason: str) -> None:
    with pytest.raises(RegexError) as caught:
        check_rule_regex(pattern)
    assert reason in str(caught.value)


def test_the_program_size_limit_counts_case_folding_too() -> None:
    """A regex is checked both ways, so it cannot pass validation and then fail to compile."""
    assert LinearRegex(r"\pL").program_size < MAX_PROGRAM_SIZE
    check_rule_regex(r"^\pL+\pN*$")


def test_a_refused_regex_is_a_400_naming_the_field_as_put_rules_answers() -> None:
    """PUT /api/rules/{id} and POST /api/rules/test validate with parse_rule and answer invalid_rule."""
    definition = {
        "id": "custom.lookahead",
        "title": "Admin sign-in name",
        "description": "A regex RE2 cannot run.",
        "severity": "low",
        "when": {"all": [{"field": "result", "eq": "success"}, {"field": "actor.upn", "regex": "adm(?=in)"}]},
    }
    with pytest.raises(RuleError) as caught:
        parse_rule(definition, 0, {})
    (problem,) = caught.value.problems
    assert problem.startswith("rule 'custom.lookahead': when.all[1].regex: ")
    answer = invalid_rule(caught.value, "custom.lookahead")
    assert answer.status == 400
    [error] = answer.errors
    assert error["field"] == "when.all[1].regex"
    assert "lookahead (?=...) is not supported" in error["message"]
