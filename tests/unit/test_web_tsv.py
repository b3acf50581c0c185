"""The console's TSV parser (web/src/tsv.js, the Activity map page) reads exactly what the app writes
(shared/datasets/tsv.py encode_tsv): tabs, line feeds, carriage returns and backslashes inside values,
non-ASCII text, empty and null cells, a header without rows. Node runs the console's own module."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT
from shared.datasets.tsv import decode_tsv, encode_tsv
from tests.support.ci import IN_CI

TSV_JS = PROJECT_ROOT / "web" / "src" / "tsv.js"
PARSE = f"""
import {{ parseTsv }} from {json.dumps(TSV_JS.as_uri())};
let text = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) text += chunk;
process.stdout.write(JSON.stringify(parseTsv(text)));
"""


def parse_in_node(data: bytes) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("the console's TSV parser needs Node.js under CI=true")
        pytest.skip("Node.js is not installed")
    done = subprocess.run(
        [node, "--input-type=module", "-e", PARSE],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


AWKWARD = [
    "tab\there",
    "line\nfeed",
    "carriage\rreturn",
    "crlf\r\n",
    "back\\slash",
    "\\t is not a tab",
    "ends with a backslash \\",
    "\\\\n",
    "São Paulo · Zürich · 東京 · القاهرة · 🛰️",
    "e\u0301 (combining)",
    "  spaces kept  ",
    "\t\n\r\\",
]


def test_values_with_tabs_line_breaks_backslashes_and_non_ascii_read_back_exactly() -> None:
    columns = ["TimeGenerated", "City", "ResultDescription"]
    rows: list[list[str | None]] = [
        ["2026-12-07T10:00:00Z", value, AWKWARD[-1 - i]] for i, value in enumerate(AWKWARD)
    ]
    data = encode_tsv(columns, rows)
    parsed = parse_in_node(data)
    assert parsed == {"columns": columns, "rows": rows}
    assert decode_tsv(data) == (parsed["columns"], parsed["rows"])  # the app's own reader agrees


def test_null_and_empty_cells_read_as_empty_text() -> None:
    columns = ["A", "B", "C"]
    data = encode_tsv(columns, [[None, "", "x"], ["", None, None]])
    assert parse_in_node(data) == {"columns": columns, "rows": [["", "", "x"], ["", "", ""]]}


def test_a_single_column_keeps_its_empty_rows() -> None:
    data = encode_tsv(["Only"], [[""], ["a"], [None]])
    assert parse_in_node(data) == {"columns": ["Only"], "rows": [[""], ["a"], [""]]}


def test_a_header_without_rows_and_column_names_that_need_escaping() -> None:
    assert parse_in_node(encode_tsv(["TimeGenerated", "IPAddress"], [])) == {
        "columns": ["TimeGenerated", "IPAddress"],
        "rows": [],
    }
    assert parse_in_node(b"a\\tb\tc\n1\t2\n") == {"columns": ["a\tb", "c"], "rows": [["1", "2"]]}


def test_an_unknown_escape_is_kept_as_written() -> None:
    """shared/datasets/tsv.py never writes one (its decoder refuses it); the console shows it as is."""
    assert parse_in_node(b"A\nx\\qy\n") == {"columns": ["A"], "rows": [["x\\qy"]]}
