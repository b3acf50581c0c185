"""cosmosdb-server's query engine, made linear (devtools/cosmos_query_linear.js), answers exactly as the
engine as published: twelve queries of the shapes the app sends (TOP with the composite ORDER BY, COUNT,
JOINs, EXISTS and ARRAY subqueries, ARRAY_CONTAINS, IN, IS_DEFINED) over 400 fixed documents. And the
local services start the server with it."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from devtools.services import DEVTOOLS_DIR, PROJECT_ROOT
from tests.support.ci import service_missing

SCRIPT = PROJECT_ROOT / "tests" / "support" / "cosmos_engine_answers.js"


def _answers(*flags: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        service_missing("node is not on PATH")
    done = subprocess.run(
        [node, str(SCRIPT), *flags], capture_output=True, text=True, timeout=120, check=True, cwd=PROJECT_ROOT
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_the_linear_engine_gives_the_published_engines_answers() -> None:
    published, linear = _answers(), _answers("--linear")
    assert published["linear"] is False
    assert linear["linear"] is True
    assert published["copies"] == 12  # every query copied its rows: the quadratic form
    assert linear["copies"] == 0
    assert [len(a) for a in linear["answers"]] == [len(a) for a in published["answers"]]
    assert all(published["answers"][2:])  # the filtered queries match something
    assert linear["answers"] == published["answers"]


def test_the_local_server_installs_it() -> None:
    source = (DEVTOOLS_DIR / "cosmos_server.js").read_text()
    install = source.index('require("./cosmos_query_linear.js").install()')
    assert install < source.index('require("@vercel/cosmosdb-server")')


@pytest.mark.parametrize("flags", [(), ("--linear",)])
def test_each_engine_runs_on_its_own(flags: tuple[str, ...]) -> None:
    answers = _answers(*flags)["answers"]
    assert answers[1] == [sum(1 for _ in answers[0] if _["pk"] == "t:2026-11")]
