"""The attribution corpus: real-shaped records from Microsoft's published schemas and examples, each paired
with the canonical actor, targets, result and summary an admin expects (tests/fixtures/attribution/*.yaml).

A case's `expect` is a subset check: every key it gives must match; keys it leaves out are not compared.
`targets` must have exactly the listed length, and each listed target is compared on the keys it gives.
Every event must also validate as an Event, and its summary must never show a gap (`?`, `None`, `{`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.ingestion.events import Event
from shared.ingestion.normalize import normalize_record

CORPUS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "attribution"
TENANT = "41463f53-8812-40f4-890f-865bf6e35190"
INGESTED_AT = "2026-11-10T12:00:00.000Z"
GAP_MARKERS = ("?", "None", "{", "}")
REQUIRED_EXPECTATIONS = ("actor", "targets", "result", "summary")


def _load_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in document["cases"]:
            cases.append((f"{path.stem}:{case['name']}", case))
    return cases


CASES = _load_cases()


def _check_subset(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} is missing from {actual!r}"
            _check_subset(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{where}: expected {len(expected)} items, got {actual!r}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            _check_subset(want, got, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


def test_the_corpus_covers_every_workload_family() -> None:
    families = {case["family"] for _, case in CASES}
    assert {
        "entra_via_management",
        "sts_logon",
        "exchange_admin",
        "exchange_mailbox",
        "exchange_app_only",
        "sharepoint",
        "dlp",
        "security_alert",
        "teams",
        "power_bi",
        "viva_engage",
        "entra_audit",
        "entra_signin",
        "intune_audit",
        "copilot",
        "forms",
        "planner",
        "workload_identity",
    } <= families
    for family in families:
        assert sum(1 for _, case in CASES if case["family"] == family) >= 2, family


@pytest.mark.parametrize(("name", "case"), CASES, ids=[name for name, _ in CASES])
def test_case_normalizes_to_the_expected_attribution(name: str, case: dict[str, Any]) -> None:
    expect = case["expect"]
    missing = [key for key in REQUIRED_EXPECTATIONS if key not in expect]
    assert not missing, f"{name}: the case must give {missing}"
    doc = normalize_record(case["source"], case["raw"], tenant_id=TENANT, ingested_at=INGESTED_AT)
    Event.model_validate(doc)
    _check_subset(expect, doc, name)
    assert not any(marker in doc["summary"] for marker in GAP_MARKERS), doc["summary"]
