"""The dataset TSV format (shared/datasets/tsv.py): exact round trips of tabs, newlines, CR, backslashes and
non-ASCII; None versus ""; the documented bytes; strict decoding; a hypothesis property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.datasets.tsv import TsvError, decode_tsv, encode_line, encode_tsv

COLUMNS = ["TimeGenerated", "UserPrincipalName", "ResultDescription"]


def test_the_documented_bytes() -> None:
    data = encode_tsv(["A", "B"], [["tab\there", "line\nfeed"], ["back\\slash", "cr\rlf\r\n"], [None, ""]])
    assert data == (b"A\tB\ntab\\there\tline\\nfeed\nback\\\\slash\tcr\\rlf\\r\\n\n\t\n")


def test_values_with_tabs_newlines_backslashes_and_non_ascii_read_back_exactly() -> None:
    rows = [
        ["2026-12-07T09:00:00.000Z", "zoë@contoso.com", "Invalid\tusername\nor password"],
        ["2026-12-07T09:01:00.000Z", "Αλέξανδρος", "C:\\Users\\ann\\t not a tab"],
        ["2026-12-07T09:02:00.000Z", "山田太郎 😀", "\\n literally, then \r\n a real CRLF"],
        ["2026-12-07T09:03:00.000Z", "\\", "\\\\\t\\"],
    ]
    columns, decoded = decode_tsv(encode_tsv(COLUMNS, rows))
    assert columns == COLUMNS
    assert decoded == rows


def test_none_and_empty_text_both_read_back_as_empty_text() -> None:
    _, decoded = decode_tsv(encode_tsv(COLUMNS, [[None, "", "x"], ["", None, None]]))
    assert decoded == [["", "", "x"], ["", "", ""]]


def test_one_column_of_empty_values_keeps_its_rows() -> None:
    data = encode_tsv(["Only"], [[None], [""], ["x"]])
    assert data == b"Only\n\n\nx\n"
    assert decode_tsv(data) == (["Only"], [[""], [""], ["x"]])


def test_a_header_without_rows() -> None:
    assert decode_tsv(encode_tsv(COLUMNS, [])) == (COLUMNS, [])


def test_a_lone_surrogate_is_written_as_the_replacement_character() -> None:
    _, decoded = decode_tsv(encode_tsv(["A"], [["bad \ud800 value"]]))
    assert decoded == [["bad \ufffd value"]]


def test_rows_must_fit_the_columns_when_encoding() -> None:
    with pytest.raises(ValueError, match="row 1 has 2 values for 3 columns"):
        encode_tsv(COLUMNS, [["a", "b", "c"], ["a", "b"]])
    with pytest.raises(ValueError, match="at least one column"):
        encode_tsv([], [])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"A\tB\nx\ty", "ends with a line feed"),
        (b"", "ends with a line feed"),
        (b"A\tB\nx\n", "line 2 has 1 cells for 2 columns"),
        (b"A\tB\nx\ty\tz\n", "line 2 has 3 cells for 2 columns"),
        (b"A\nbad \\x escape\n", "unknown escape sequence"),
        (b"A\ntrailing \\\n", "unknown escape sequence"),
        (b"A\n\xff\xfe\n", "not UTF-8"),
    ],
)
def test_decoding_is_strict(data: bytes, problem: str) -> None:
    with pytest.raises(TsvError, match=problem):
        decode_tsv(data)


def test_the_dedupe_line_is_the_written_line() -> None:
    assert encode_line(["a\tb", None, "c\\"]) == "a\\tb\t\tc\\\\"
    assert encode_line([None]) == encode_line([""])


# Text of any code point but lone surrogates (which UTF-8 cannot hold), weighted toward the escaped ones.
cell_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\t", "\n", "\r", "\\", "t", "n", "r", "é", "😀", " "]),
        st.characters(codec="utf-8"),
    ),
    max_size=30,
)


@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda width: st.tuples(
            st.lists(
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), min_size=width, max_size=width
            ),
            st.lists(st.lists(st.one_of(st.none(), cell_text), min_size=width, max_size=width), max_size=20),
        )
    )
)
def test_any_rows_round_trip_with_none_read_as_empty(table: tuple[list[str], list[list[str | None]]]) -> None:
    columns, rows = table
    data = encode_tsv(columns, rows)
    decoded_columns, decoded_rows = decode_tsv(data)
    assert decoded_columns == columns
    assert decoded_rows == [["" if value is None else value for value in row] for row in rows]
    # One line per row: no raw tab, LF or CR survives inside a value.
    assert data.count(b"\n") == len(rows) + 1
    assert b"\r" not in data
    assert data.count(b"\t") == (len(columns) - 1) * (len(rows) + 1)


@given(
    st.integers(min_value=1, max_value=4).flatmap(
        lambda width: st.lists(
            st.lists(st.one_of(st.none(), cell_text), min_size=width, max_size=width), max_size=20
        ).map(lambda rows: (width, rows))
    )
)
def test_the_whole_file_is_the_rows_encoded_line_by_line(table: tuple[int, list[list[str | None]]]) -> None:
    """encode_tsv joins the clean rows at once and encodes only the others value by value: the text
    must be what encode_line gives each row."""
    width, rows = table
    columns = [f"c{n}" for n in range(width)]
    expected = "\n".join([encode_line(columns), *map(encode_line, rows), ""])
    assert encode_tsv(columns, rows) == expected.encode("utf-8")  # cell_text has no lone surrogates
