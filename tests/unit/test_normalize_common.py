"""The shared value parsers every normalizer uses: client IPs and numbers sent as strings."""

from __future__ import annotations

from typing import Any

import pytest

from shared.ingestion.normalize._common import client_ip, integer


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:51423", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("fe80::1%eth0", "fe80::1"),
        ("localhost", None),
        ("localhost:8080", None),
        ("<null>", None),
        ("Not Available", None),
        ("999.1.1.1", None),
        ("1.2.3", None),
        ("1.2.3.4\x00", None),
        ("", None),
        (None, None),
        (12345, None),
        (["1.2.3.4"], None),
    ],
)
def test_client_ip_keeps_only_addresses(value: Any, expected: str | None) -> None:
    assert client_ip(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        ("5", 5),
        (" 0 ", 0),
        ("-1", -1),
        ("+7", 7),
        (3.0, 3),
        (3.5, None),
        ("5a", None),
        ("", None),
        ("٣", None),  # a non-ASCII digit is not a number in a wire format
        ("1" * 30, None),
        (True, None),
        (None, None),
        ([5], None),
    ],
)
def test_integer_reads_json_numbers_and_digit_strings(value: Any, expected: int | None) -> None:
    assert integer(value) == expected


def test_a_value_nested_deeper_than_the_parser_allows_stays_text() -> None:
    from shared.ingestion.normalize._common import decode_json_value

    deep = "[" * 100_000 + "]" * 100_000
    assert decode_json_value(deep) == deep


def test_a_record_nested_too_deeply_is_a_normalization_error_not_a_crash() -> None:
    """One such record must go to quarantine, not fail its whole page."""
    from shared.ingestion.normalize import NormalizationError, normalize_record

    nested = "[" * 900 + '"x"' + "]" * 900
    record = {
        "id": "7d1f3a2b-0000-4000-8000-000000000001",
        "activityDateTime": "2026-11-01T10:00:00Z",
        "activityDisplayName": "Add member to role",
        "result": "success",
        "initiatedBy": {"user": {"id": "u1", "userPrincipalName": "a@contoso.com"}},
        "targetResources": [
            {
                "id": "t1",
                "type": "User",
                "modifiedProperties": [
                    {"displayName": "Role.DisplayName", "oldValue": None, "newValue": nested}
                ],
            }
        ],
    }
    try:
        document = normalize_record("entra_audit", record, tenant_id="t", ingested_at="2026-11-01T10:05:00Z")
    except NormalizationError:
        return
    assert "?" not in document["summary"]


def test_a_boolean_record_type_does_not_poison_the_classification_of_record_type_1() -> None:
    from shared.ingestion.normalize import normalize_record

    def record(record_type: object, native_id: str) -> dict[str, object]:
        return {
            "Id": native_id,
            "CreationTime": "2026-01-01T00:00:00",
            "RecordType": record_type,
            "Workload": "Exchange",
            "Operation": "Set-Mailbox",
            "UserId": "admin@contoso.com",
        }

    normalize_record(
        "o365_management", record(True, "id-bool"), tenant_id="t", ingested_at="2026-01-01T00:05:00Z"
    )
    document = normalize_record(
        "o365_management", record(1, "id-one"), tenant_id="t", ingested_at="2026-01-01T00:05:00Z"
    )
    assert document["category"] == "ExchangeAdmin"
