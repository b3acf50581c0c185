"""Entra sign-ins: Graph `auditLogs/signIns` records (the signIn resource)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from devtools.simulator.directory import guid
from devtools.simulator.render.common import (
    CLIENT_APPS,
    DEVICES,
    RESOURCE_APPS,
    Json,
    RenderContext,
    Template,
    random_ip,
)
from devtools.simulator.timefmt import graph_time

if TYPE_CHECKING:
    from devtools.simulator.generator import Record

# (status.errorCode, failureReason, share of sign-ins)
_OUTCOMES: tuple[tuple[int, str | None, float], ...] = (
    (0, None, 0.70),
    (50126, "Error validating credentials due to invalid username or password.", 0.14),
    (50074, "Strong Authentication is required.", 0.10),
    (
        53003,
        "Access has been blocked by Conditional Access policies. The access policy does not allow token "
        "issuance.",
        0.06,
    ),
)
_OUTCOME_CUMULATIVE_SHARES = [sum(o[2] for o in _OUTCOMES[: i + 1]) for i in range(len(_OUTCOMES))]
_LOCATIONS = (
    ("Redmond", "Washington", "US", 47.6740, -122.1215),
    ("München", "Bayern", "DE", 48.1374, 11.5755),
    ("東京", "東京都", "JP", 35.6895, 139.6917),
    ("São Paulo", "São Paulo", "BR", -23.5505, -46.6333),
    ("Kraków", "Małopolskie", "PL", 50.0647, 19.9450),
    ("Oslo", "Oslo", "NO", 59.9139, 10.7522),
)


def _sign_in(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
    user = rng.choice(ctx.directory.users)
    app_name, app_id, client_app = rng.choice(CLIENT_APPS)
    resource_name, resource_id = rng.choice(RESOURCE_APPS)
    roll = rng.random()
    code, reason = next(
        (o[0], o[1]) for o, c in zip(_OUTCOMES, _OUTCOME_CUMULATIVE_SHARES, strict=True) if roll < c
    )
    city, state, country, lat, lon = rng.choice(_LOCATIONS)
    os_name, browser = rng.choice(DEVICES)
    managed = rng.random() < 0.5
    policies: list[Json] = []
    if code == 53003:
        policies.append(
            {
                "id": guid(random.Random(f"ca-policy:{ctx.tenant_id}:1")),  # noqa: S311
                "displayName": "Block legacy authentication",
                "enforcedGrantControls": ["Block"],
                "enforcedSessionControls": [],
                "result": "failure",
            }
        )
    elif rng.random() < 0.4:
        policies.append(
            {
                "id": guid(random.Random(f"ca-policy:{ctx.tenant_id}:0")),  # noqa: S311
                "displayName": "Require MFA for administrators",
                "enforcedGrantControls": ["Mfa"],
                "enforcedSessionControls": [],
                "result": "success" if code == 0 else "notApplied",
            }
        )
    ca_status = "failure" if code == 53003 else ("success" if policies and code == 0 else "notApplied")
    return {
        "id": record.native_id,
        "createdDateTime": graph_time(record.event_us),
        "userDisplayName": user.display_name,
        "userPrincipalName": user.upn,
        "userId": user.id,
        "appId": app_id,
        "appDisplayName": app_name,
        "ipAddress": random_ip(rng),
        "clientAppUsed": client_app,
        "correlationId": guid(rng),
        "conditionalAccessStatus": ca_status,
        "isInteractive": True,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "riskEventTypes_v2": [],
        "resourceDisplayName": resource_name,
        "resourceId": resource_id,
        "status": {
            "errorCode": code,
            "failureReason": reason or "Other.",
            "additionalDetails": "MFA requirement satisfied by claim in the token"
            if code == 50074 and rng.random() < 0.2
            else None,
        },
        "deviceDetail": {
            "deviceId": guid(rng) if managed else "",
            "displayName": f"DESKTOP-{rng.randrange(16**6):06X}" if managed else "",
            "operatingSystem": os_name,
            "browser": browser,
            "isCompliant": managed and rng.random() < 0.8,
            "isManaged": managed,
            "trustType": "Azure AD joined" if managed else "",
        },
        "location": {
            "city": city,
            "state": state,
            "countryOrRegion": country,
            "geoCoordinates": {"altitude": None, "latitude": lat, "longitude": lon},
        },
        "appliedConditionalAccessPolicies": policies,
    }


TEMPLATES: tuple[Template, ...] = (Template("Sign-in", 1, _sign_in),)
