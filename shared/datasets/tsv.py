"""The TSV format of the datasets, and its one escaping rule.

- UTF-8, no byte order mark; a header row with the column names, then one line per row; every line,
  the last included, ends with `\\n` (LF).
- Cells are separated by a tab. Inside a value four characters are escaped with a backslash:
  `\\` -> `\\\\`, tab -> `\\t`, LF -> `\\n`, CR -> `\\r`. Nothing else is escaped: any other character,
  non-ASCII included, is written as itself.
- None is written as an empty cell, so None and "" read back alike, as "". (A lone surrogate, which
  UTF-8 cannot hold, is written as U+FFFD.)

`decode_tsv` is strict: a file that does not end with LF, a row with the wrong number of cells, a
backslash followed by anything but `\\ t n r`, or bytes that are not UTF-8 raise TsvError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import compress, count, repeat
from typing import cast

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_ESCAPE_SEQUENCE = re.compile(r"\\(.?)", re.DOTALL)

Row = Sequence[str | None]


class TsvError(ValueError):
    """Bytes that are not a TSV file of this format."""


def escape_cell(value: str | None) -> str:
    return "" if value is None else value.translate(_ESCAPES)


def encode_line(values: Iterable[str | None]) -> str:
    """One line (without its LF): the escaped values joined by tabs. Two rows encode alike exactly when
    they read back alike, so the refresh service deduplicates rows by this text."""
    items: Sequence[str | None] = values if isinstance(values, (list, tuple)) else list(values)
    try:  # most rows hold no None: joined as they are, without a copy
        line = "\t".join(cast("Sequence[str]", items))
        cells = cast("Sequence[str]", items)
    except TypeError:
        cells = ["" if value is None else value if isinstance(value, str) else str(value) for value in items]
        line = "\t".join(cells)
    # The common case, checked in C: no value holds a character to escape, so the line is the join.
    if line.count("\t") == len(cells) - 1 and "\\" not in line and "\n" not in line and "\r" not in line:
        return line
    return "\t".join(cell.translate(_ESCAPES) for cell in cells)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub_surrogates(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def encode_tsv(columns: Sequence[str], rows: Iterable[Row]) -> bytes:
    """The TSV bytes of `rows` under a header of `columns`. Every row has one value per column."""
    width = len(columns)
    if width == 0:
        raise ValueError("a TSV file has at least one column")
    rows = rows if isinstance(rows, list) else list(rows)
    if set(map(len, rows)) - {width}:
        index, row = next((i, r) for i, r in enumerate(rows) if len(r) != width)
        raise ValueError(f"row {index} has {len(row)} values for {width} columns")
    text = "\n".join([encode_line(columns), *_encoded_lines(rows, width), ""])
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _scrub_surrogates(text).encode("utf-8")


def _encoded_lines(rows: list[Row], width: int) -> list[str]:
    """`encode_line` of each row, with the per-row work in C: every row is joined as it is, and only the
    lines that hold a None or a character to escape (a tab count off, a backslash, CR or LF) are encoded
    again value by value. The same text as `map(encode_line, rows)`, several times faster."""
    try:
        lines = list(map("\t".join, rows))  # type: ignore[arg-type]  # a None raises TypeError
    except TypeError:
        lines = ["\t".join(row) if None not in row else "" for row in rows]  # type: ignore[arg-type]
        dirty = set(compress(count(), map(_has_none, rows)))
    else:
        dirty = set()
    positions = range(len(lines))
    dirty.update(compress(positions, map((width - 1).__ne__, map(str.count, lines, repeat("\t")))))
    for special in ("\\", "\n", "\r"):
        dirty.update(compress(positions, map(str.__contains__, lines, repeat(special))))
    for index in dirty:
        lines[index] = encode_line(rows[index])
    return lines


def _has_none(row: Row) -> bool:
    return None in row


def _unescape_match(match: re.Match[str]) -> str:
    replacement = _UNESCAPES.get(match.group(1))
    if replacement is None:
        raise TsvError(f"unknown escape sequence {match.group(0)!r}")
    return replacement


def decode_cell(cell: str) -> str:
    return _ESCAPE_SEQUENCE.sub(_unescape_match, cell) if "\\" in cell else cell


def decode_tsv(data: bytes) -> tuple[list[str], list[list[str]]]:
    """The columns and rows of TSV bytes written by encode_tsv; empty cells read back as ""."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TsvError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    if not text.endswith("\n"):
        raise TsvError("a TSV file ends with a line feed")
    lines = text[:-1].split("\n")
    columns = [decode_cell(cell) for cell in lines[0].split("\t")]
    width = len(columns)
    rows: list[list[str]] = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != width:
            raise TsvError(f"line {number} has {len(cells)} cells for {width} columns")
        rows.append([decode_cell(cell) for cell in cells])
    return columns, rows
