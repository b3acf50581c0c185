r"""Linear-time regular expressions for rules: RE2 (the `google-re2` wheel) behind a small typed adapter.

Python's `re` backtracks: the rule regex `^(\w+\s?)+$` takes seconds on 24 characters and four times as
long per two more, so one saved rule could stall the alert worker on a single event. RE2 matches in
time linear in the text. It refuses what it cannot do that way (backreferences, lookaround, atomic
groups, possessive quantifiers), and a regex is also refused when its compiled program exceeds
MAX_PROGRAM_SIZE, which bounds the cost per character as well.

What a rule author may notice coming from `re` (README "Rule format"):
- `\w`, `\d`, `\s` and `\b` are ASCII; use `\pL`, `\pN`, `[[:^space:]]` or `\p{Greek}` for Unicode.
- `$` without `(?m)` matches only at the very end of the text; `re` also matches before a final `\n`.
- Python spellings RE2 lacks are rewritten before compiling, so they keep their meaning: `\Z` (end of
  text, RE2's `\z`), `\uXXXX` / `\UXXXXXXXX`, and `{,n}` (RE2 would read it as literal text).
- counted repetition goes up to `{1000}`; there is no verbose mode `(?x)` and no `(?#comment)`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from typing import Any

import re2

# RE2 instructions a rule regex may compile to. Matching costs at most (text length x active
# instructions): at this size a regex crafted to keep thousands of states alive (`a[ab]{999}` four times)
# needs up to about a second for a 10,000-character value on one busy core; a typical one microseconds.
# `\pL` alone is 1,201 instructions, `.{600}` about 4,800.
MAX_PROGRAM_SIZE = 5_000
# RE2's memory per compiled regex (program and DFA cache; when the cache fills, RE2 falls back to its
# NFA, still linear). google-re2 keeps the last 128 compiled regexes, so this bounds that cache too.
# The default is 8 MiB; at 2 MiB the crafted worst cases above were no slower.
MAX_MEMORY_BYTES = 2 << 20

_SURROGATE = re.compile("[\ud800-\udfff]")
_HEX = frozenset(string.hexdigits)

# RE2's message prefix -> what a rule author should read instead.
_EXPLAINED: tuple[tuple[str, str], ...] = (
    ("invalid perl operator: (?=", "lookahead (?=...) is not supported"),
    ("invalid perl operator: (?!", "lookahead (?!...) is not supported"),
    ("invalid perl operator: (?<=", "lookbehind (?<=...) is not supported"),
    ("invalid perl operator: (?<!", "lookbehind (?<!...) is not supported"),
    ("invalid perl operator: (?P", "backreferences such as (?P=name) are not supported"),
    ("invalid perl operator: (?>", "atomic groups (?>...) are not supported"),
    ("invalid perl operator: (?(", "conditional groups (?(...)...) are not supported"),
    ("invalid perl operator: (?x", "verbose mode (?x) is not supported"),
    ("invalid perl operator: (?#", "comments (?#...) are not supported"),
    ("bad repetition operator: *+", "possessive quantifiers (*+, ++, ?+) are not supported"),
    ("bad repetition operator: ++", "possessive quantifiers (*+, ++, ?+) are not supported"),
    ("bad repetition operator: ?+", "possessive quantifiers (*+, ++, ?+) are not supported"),
    ("invalid repetition size", "counted repetition goes up to {1000}"),
    ("pattern too large", f"the regex is too large (more than {MAX_PROGRAM_SIZE} RE2 instructions)"),
)
_SYNTAX_NOTE = "rule regexes use RE2 syntax, which matches in linear time"


class RegexError(ValueError):
    """A pattern that cannot be used as a rule regex; the message says why in a rule author's terms."""


def _explain(detail: str) -> str:
    if re.fullmatch(r"invalid escape sequence: \\[1-9]", detail):
        return f"backreferences such as {detail.rsplit(' ', 1)[1]} are not supported ({_SYNTAX_NOTE})"
    for prefix, explanation in _EXPLAINED:
        if detail.startswith(prefix):
            return f"{explanation} ({_SYNTAX_NOTE})"
    return f"{detail} ({_SYNTAX_NOTE})"


def to_re2_syntax(pattern: str) -> str:
    r"""`pattern` with the Python spellings RE2 lacks rewritten: `\Z` -> `\z`, `\uXXXX` and
    `\UXXXXXXXX` -> `\x{...}`, and `{,n}` -> `{0,n}` outside character classes."""
    out: list[str] = []
    in_class = False
    class_start = -1
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            escaped = pattern[i + 1]
            width = {"u": 4, "U": 8}.get(escaped, 0)
            digits = pattern[i + 2 : i + 2 + width]
            if escaped == "Z" and not in_class:
                out.append(r"\z")
            elif width and len(digits) == width and _HEX.issuperset(digits):
                out.append(f"\\x{{{digits}}}")
                i += width
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "[" and pattern[i + 1 : i + 2] == ":":  # a POSIX class such as [:alpha:]
                close = pattern.find(":]", i + 2)
                if close > 0:
                    out.append(pattern[i : close + 2])
                    i = close + 2
                    continue
            # `]` right after `[` or `[^` is a literal member, as in both `re` and RE2
            if char == "]" and i > class_start:
                in_class = False
        elif char == "[":
            in_class = True
            class_start = i + 2 if pattern[i + 1 : i + 2] == "^" else i + 1
        elif char == "{" and pattern[i + 1 : i + 2] == ",":
            close = pattern.find("}", i)
            upper = pattern[i + 2 : close] if close > 0 else "x"
            if upper == "" or upper.isdigit():  # `{,n}` is `{0,n}` in `re`, literal text in RE2
                out.append("{0," + upper + "}")
                i = close + 1
                continue
        out.append(char)
        i += 1
    return "".join(out)


def _options(case_sensitive: bool, capture: bool) -> Any:
    options = re2.Options()
    options.max_mem = MAX_MEMORY_BYTES
    options.case_sensitive = case_sensitive
    options.never_capture = not capture
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    return options


def _valid_text(text: str) -> str:
    """`text` with lone surrogates (valid in a Python str, not in UTF-8) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


class LinearRegex:
    """One compiled rule regex. `search` is `re.search(...) is not None`, in linear time."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str, *, case_sensitive: bool = True, capture: bool = False) -> None:
        self.pattern = pattern
        try:
            self._compiled: Any = re2.compile(to_re2_syntax(pattern), _options(case_sensitive, capture))
        except re2.error as exc:
            raw = exc.args[0] if exc.args else b""
            detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            raise RegexError(_explain(detail)) from None
        except UnicodeEncodeError:
            raise RegexError("a regex must be valid Unicode text (it holds a lone surrogate)") from None
        if self.program_size > MAX_PROGRAM_SIZE:
            raise RegexError(
                f"the regex compiles to {self.program_size} RE2 instructions, more than {MAX_PROGRAM_SIZE}; "
                "shorten counted repetitions such as .{500} or repeated Unicode classes such as \\pL{20}"
            )

    @property
    def program_size(self) -> int:
        return int(self._compiled.programsize)

    def search(self, text: str) -> bool:
        """True when the regex matches anywhere in `text`."""
        try:
            return self._compiled.search(text) is not None
        except UnicodeEncodeError:
            return self._compiled.search(_valid_text(text)) is not None

    def captures(self, text: str, group: int = 1) -> Iterator[str]:
        """Group `group` of every non-overlapping match, left to right (needs `capture=True`)."""
        try:
            matches = list(self._compiled.finditer(text))
        except UnicodeEncodeError:
            matches = list(self._compiled.finditer(_valid_text(text)))
        for match in matches:
            value = match.group(group)
            if value is not None:
                yield value


def check_rule_regex(pattern: str) -> None:
    """Raise RegexError when `pattern` cannot be a rule regex, with or without `case_sensitive`."""
    LinearRegex(pattern, case_sensitive=False)
    LinearRegex(pattern, case_sensitive=True)
