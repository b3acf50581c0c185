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

# (status.errorCode, failureReason, status.additionalDetails, share of sign-ins)
_OUTCOMES: tuple[tuple[int, str | None, str | None, float], ...] = (
    (0, None, None, 0.68),
    (
        50126,
        "Error validating credentials due to invalid username or password.",
        "The user didn't enter the right credentials. It's expected to see some number of these errors in "
        "your logs due to users making mistakes.",
        0.14,
    ),
    (50074, "Strong Authentication is required.", None, 0.09),
    (
        500121,
        "Authentication failed during strong authentication request.",
        "MFA denied; user declined the authentication",
        0.03,
    ),
    (
        53003,
        "Access has been blocked by Conditional Access policies. The access policy does not allow token "
        "issuance.",
        None,
        0.06,
    ),
)
_OUTCOME_CUMULATIVE_SHARES = [sum(o[3] for o in _OUTCOMES[: i + 1]) for i in range(len(_OUTCOMES))]
_LOCATIONS = (
    ("Redmond", "Washington", "US", 47.6740, -122.1215),
    ("München", "Bayern", "DE", 48.1374, 11.5755),
    ("東京", "東京都", "JP", 35.6895, 139.6917),
    ("São Paulo", "São Paulo", "BR", -23.5505, -46.6333),
    ("Kraków", "Małopolskie", "PL", 50.0647, 19.9450),
    ("Oslo", "Oslo", "NO", 59.9139, 10.7522),
)
# clientAppUsed values of legacy-authentication clients, as the sign-in logs spell them; legacy
# sign-ins go to Exchange Online with a password, from no registered device.
_LEGACY_CLIENTS = (
    "IMAP4",
    "POP3",
    "Authenticated SMTP",
    "Exchange ActiveSync",
    "Exchange Web Services",
    "Other clients",
)
_EXCHANGE_ONLINE = ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000")
# (riskLevelDuringSignIn, riskEventTypes_v2) of the few risky sign-ins.
_RISKS = (
    ("low", ["unfamiliarFeatures"]),
    ("medium", ["anonymizedIPAddress"]),
    ("high", ["unlikelyTravel", "unfamiliarFeatures"]),
)
# The tenant's Conditional Access policies, as the directory audits name them (entra_audit._CA_POLICIES,
# same index, same id): (index, displayName, enforcedGrantControls). The pilot is report-only and the
# last one disabled.
_CA_POLICIES = (
    (0, "Require MFA for administrators", ["Mfa"]),
    (1, "Block legacy authentication", ["Block"]),
    (2, "Require compliant device \u2013 Zoë's pilot", ["RequireCompliantDevice"]),
    (3, "Blockera äldre autentisering", ["Block"]),
    (4, "管理者の多要素認証", ["Mfa"]),
)


def _policy(ctx: RenderContext, index: int, name: str, controls: list[str], result: str) -> Json:
    """An appliedConditionalAccessPolicy; the ids match the policies the directory audits change."""
    return {
        "id": guid(random.Random(f"ca-policy:{ctx.tenant_id}:{index}")),  # noqa: S311
        "displayName": name,
        "enforcedGrantControls": controls,
        "enforcedSessionControls": [],
        "result": result,
    }


def _applied_policies(rng: random.Random, ctx: RenderContext, code: int, legacy: bool) -> list[Json]:
    """Graph lists every policy of the tenant on every sign-in: legacy authentication is blocked (53003)
    by both blocking policies, MFA for administrators applies to some modern sign-ins and fails when the
    user denies the prompt (500121), the compliant-device pilot runs report-only, the disabled policy is
    notEnabled."""
    mfa_result = "notApplied"
    if code == 500121:
        mfa_result = "failure"
    elif code == 0 and not legacy and rng.random() < 0.4:
        mfa_result = "success"
    block_result = "failure" if code == 53003 else "notApplied"
    pilot_result = "reportOnlyFailure" if rng.random() < 0.2 else "reportOnlyNotApplied"
    results = (mfa_result, block_result, pilot_result, block_result, "notEnabled")
    return [
        _policy(ctx, index, name, controls, result)
        for (index, name, controls), result in zip(_CA_POLICIES, results, strict=True)
    ]


def _sign_in(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
    user = rng.choice(ctx.directory.users)
    app_name, app_id, client_app = rng.choice(CLIENT_APPS)
    resource_name, resource_id = rng.choice(RESOURCE_APPS)
    roll = rng.random()
    code, reason, details = next(
        (o[0], o[1], o[2]) for o, c in zip(_OUTCOMES, _OUTCOME_CUMULATIVE_SHARES, strict=True) if roll < c
    )
    city, state, country, lat, lon = rng.choice(_LOCATIONS)
    os_name, browser = rng.choice(DEVICES)
    managed = rng.random() < 0.5
    # Conditional Access blocks legacy authentication (53003); password sprays come half through it.
    legacy_roll = rng.random()
    legacy = code == 53003 or legacy_roll < (0.5 if code == 50126 else 0.03)
    if legacy:
        client_app = rng.choice(_LEGACY_CLIENTS)
        app_name, app_id = _EXCHANGE_ONLINE
        resource_name, resource_id = _EXCHANGE_ONLINE
        managed = False
        browser = ""
    policies = _applied_policies(rng, ctx, code, legacy)
    ca_status = (
        "failure"
        if any(p["result"] == "failure" for p in policies)
        else "success"
        if any(p["result"] == "success" for p in policies)
        else "notApplied"
    )
    risk_level, risk_events = ("none", []) if rng.random() >= 0.04 else rng.choice(_RISKS)
    if code == 0 and not legacy and details is None and rng.random() < 0.2:
        details = "MFA requirement satisfied by claim in the token"
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
        "riskLevelAggregated": risk_level,
        "riskLevelDuringSignIn": risk_level,
        "riskState": "none" if risk_level == "none" else "atRisk",
        "riskEventTypes": list(risk_events),
        "riskEventTypes_v2": list(risk_events),
        "resourceDisplayName": resource_name,
        "resourceId": resource_id,
        "status": {
            "errorCode": code,
            "failureReason": reason or "Other.",
            "additionalDetails": details,
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
