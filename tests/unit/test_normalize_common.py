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
