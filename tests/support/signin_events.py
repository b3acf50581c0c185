"""Sign-in events for the events datasets' tests: Graph signIn records, normalized as ingestion does."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from shared.ingestion.normalize import normalize_record
from shared.platform.clock import utc_iso

CITIES = (
    ("Zürich", "Zurich", "CH", 47.3769, 8.5417),
    ("São Paulo", "SP", "BR", -23.5505, -46.6333),
    ("Seattle", "Washington", "US", 47.6062, -122.3321),
    ("東京", None, "JP", 35.6762, 139.6503),
)
FAILURES = (
    (50126, "Error validating credentials due to invalid username or password."),
    (53003, "Access has been blocked by Conditional Access policies.\nPolicy:\tBlock legacy"),
)


def signin_record(rng: random.Random, moment: dt.datetime, *, failed: bool) -> dict[str, Any]:
    """A Graph signIn (v1.0) at `moment`, failed or successful, with a location."""
    city, state, country, latitude, longitude = rng.choice(CITIES)
    code, reason = rng.choice(FAILURES) if failed else (0, None)
    user = rng.randrange(20)
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "createdDateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
        "userDisplayName": f"User {user}",
        "userPrincipalName": f"user{user}@contoso.com",
        "userId": str(uuid.UUID(int=user + 1)),
        "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
        "appDisplayName": rng.choice(("Graph explorer", "Microsoft Teams", "Azure Portal")),
        "ipAddress": f"203.0.113.{rng.randrange(1, 255)}",
        "clientAppUsed": "Browser",
        "correlationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "isInteractive": True,
        "status": {"errorCode": code, "failureReason": reason, "additionalDetails": None},
        "location": {
            "city": city,
            "state": state,
            "countryOrRegion": country,
            "geoCoordinates": {"latitude": latitude, "longitude": longitude},
        },
    }


def signin_events(
    tenant_id: str, start: dt.datetime, count: int, *, spacing: dt.timedelta, seed: int = 19
) -> list[dict[str, Any]]:
    """`count` normalized sign-in events from `start`, `spacing` apart; about a third succeed. Each is
    ingested 2 to 90 minutes after it happened (some late: a later ingested_at than newer events)."""
    rng = random.Random(seed)  # noqa: S311 - test data
    events = []
    for index in range(count):
        moment = start + spacing * index
        record = signin_record(rng, moment, failed=rng.random() < 0.67)
        ingested = moment + dt.timedelta(minutes=rng.randrange(2, 90))
        events.append(
            normalize_record("entra_signin", record, tenant_id=tenant_id, ingested_at=utc_iso(ingested))
        )
    return events
