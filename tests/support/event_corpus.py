"""A reproducible corpus of normalized events, and the search filters with their reference answers.

Shared by the search tests that call `EventSearch` directly and those that go through the local host.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from shared.ingestion.events import Event, partition_key
from shared.platform.clock import utc_iso

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
SERVICES = ["Directory", "Exchange", "SharePoint", "Intune", "Teams"]
OPERATIONS = ["Add member to role", "Set-Mailbox", "FileAccessed", "Wipe ManagedDevice", "MemberAdded"]
ACTORS = [("ana@contoso.com", "Ana Lopez"), ("bob@contoso.com", "Bob Stone"), (None, "Sync App")]


def make_events(tenant: str, count: int) -> list[dict[str, Any]]:
    rng = random.Random(11)  # noqa: S311 - fixed test data
    events: list[dict[str, Any]] = []
    for i in range(count):
        moment = NOW - dt.timedelta(minutes=rng.randrange(0, 40 * 24 * 60))  # spans October and November
        if i % 17 == 0 and events:
            moment = dt.datetime.fromisoformat(events[-1]["timestamp"].replace("Z", "+00:00"))  # ties
        service = rng.choice(SERVICES)
        upn, display = rng.choice(ACTORS)
        timestamp = utc_iso(moment)
        document = {
            "id": f"test:{i:05d}",
            "pk": partition_key(tenant, timestamp),
            "tenant_id": tenant,
            "source": "o365_management" if service in ("Exchange", "SharePoint", "Teams") else "entra_audit",
            "service": service,
            "category": rng.choice(["RoleManagement", "ExchangeAdmin", None]),
            "operation": OPERATIONS[SERVICES.index(service)],
            "operation_type": rng.choice(["update", "assign", "read"]),
            "result": rng.choice(["success", "failure"]),
            "actor": {"type": "user", "id": str(i), "upn": upn, "display": display, "ip": None},
            "targets": [
                {
                    "type": "User",
                    "id": f"t{i % 7}",
                    "display": f"target-{i % 7}@contoso.com",
                    "modified_properties": [],
                }
            ],
            "timestamp": timestamp,
            "ingested_at": timestamp,
            "correlation_id": f"corr-{i % 5}",
            "summary": f"{display} did {OPERATIONS[SERVICES.index(service)]} #{i}",
            "tags": ["reviewed"] if i % 4 == 0 else (["noise"] if i % 9 == 0 else []),
        }
        Event.model_validate(document)
        events.append(document)
    return events


def expected_ids(
    events: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool], start: dt.datetime, end: dt.datetime
) -> list[str]:
    """The ids a search must return, newest first (ties broken by id, descending)."""
    lower, upper = utc_iso(start), utc_iso(end)
    matches = [e for e in events if lower <= e["timestamp"] < upper and keep(e)]
    return [e["id"] for e in sorted(matches, key=lambda e: (e["timestamp"], e["id"]), reverse=True)]


def _lower(value: str | None) -> str:
    return (value or "").lower()


FILTERS: list[tuple[str, dict[str, Any], Any]] = [
    ("none", {}, lambda e: True),
    ("service", {"service": ["Exchange", "Intune"]}, lambda e: e["service"] in ("Exchange", "Intune")),
    ("operation", {"operation": "Set-Mailbox"}, lambda e: e["operation"] == "Set-Mailbox"),
    ("operation_contains", {"operation_contains": "MEMBER"}, lambda e: "member" in e["operation"].lower()),
    ("result", {"result": "failure"}, lambda e: e["result"] == "failure"),
    ("actor upn", {"actor": "ANA@"}, lambda e: "ana@" in _lower(e["actor"]["upn"])),
    ("actor display", {"actor": "sync"}, lambda e: "sync" in _lower(e["actor"]["display"])),
    (
        "target",
        {"target": "target-3"},
        lambda e: any("target-3" in _lower(t["display"]) for t in e["targets"]),
    ),
    ("tag", {"tag": ["reviewed"]}, lambda e: "reviewed" in e["tags"]),
    (
        "exclude_tag",
        {"exclude_tag": ["noise", "reviewed"]},
        lambda e: not set(e["tags"]) & {"noise", "reviewed"},
    ),
    ("correlation_id", {"correlation_id": "corr-2"}, lambda e: e["correlation_id"] == "corr-2"),
    ("q", {"q": "#12"}, lambda e: "#12" in e["summary"].lower()),
    (
        "combined",
        {"service": ["Directory"], "result": "success", "actor": "bob", "page_size": "7"},
        lambda e: (
            e["service"] == "Directory" and e["result"] == "success" and "bob" in _lower(e["actor"]["upn"])
        ),
    ),
]
