"""The validators: `evaluate(obj, validators, now)` runs each enabled validator whose scope holds the
object and returns its findings.

A Finding is {validator_id, severity, subject, message, evidence}. `subject` names what within the
object the finding is about, stable from one evaluation to the next, so a store can keep first and last
seen per (object, validator, subject):

| validator | one finding per | subject |
|---|---|---|
| notes-lists-owners | object | `notes` |
| ownerless | object | `owners` |
| credential-expiry | credential | `{location}:{kind}:{keyId}` (Credential.subject) |
| credential-lifetime | credential | as credential-expiry |
| high-privilege-permission | permission | `permission:{resource appId}:{permission}` |
| secret-with-privileged-role | object | `secrets-and-roles` |
| unverified-multitenant | object | `publisher` |

Severity is the validator's (from the file). credential-expiry gives every credential it flags the same
severity and puts its bucket in the evidence (`expired`, `window_days`: the smallest window that holds
the end, `days_left`), so an alert rule can escalate on `window_days: 7` without a second validator.

Evidence is small JSON: lists are cut at MAX_EVIDENCE_ITEMS with a `more` count. Findings come back
sorted by (validator_id, subject), so the same object, file and time give the same list.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, JsonValue

from shared.governance.config import (
    CredentialExpiry,
    CredentialLifetime,
    HighPrivilegePermission,
    NotesListsOwners,
    Ownerless,
    SecretWithPrivilegedRole,
    UnverifiedMultitenant,
    ValidatorConfig,
    ValidatorSet,
)
from shared.governance.model import Credential, GovernedObject
from shared.governance.notes import DirectoryLookup, notes_problems
from shared.platform.clock import utc_iso
from shared.rules.model import Severity

MAX_EVIDENCE_ITEMS = 20
DAY = dt.timedelta(days=1)


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    validator_id: str
    severity: Severity
    subject: str
    message: str
    evidence: dict[str, JsonValue]


def evaluate(
    obj: GovernedObject,
    validators: ValidatorSet,
    now: dt.datetime,
    *,
    directory: DirectoryLookup | None = None,
) -> list[Finding]:
    """Every finding of the enabled, in-scope validators for `obj` at `now` (timezone-aware), sorted by
    (validator_id, subject). An empty list means the object passes. `directory` is used only by
    notes-lists-owners with `require_owner: false`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    findings: list[Finding] = []
    for validator in validators.enabled():
        if validators.scope_for(validator).applies_to(obj):
            findings.extend(run_validator(validator, obj, now, directory=directory))
    return sorted(findings, key=lambda f: (f.validator_id, f.subject))


def run_validator(
    validator: ValidatorConfig,
    obj: GovernedObject,
    now: dt.datetime,
    *,
    directory: DirectoryLookup | None = None,
) -> list[Finding]:
    """One validator on one object, whatever its scope and switch say."""
    if isinstance(validator, NotesListsOwners):
        return _notes(validator, obj, directory)
    if isinstance(validator, Ownerless):
        return _ownerless(validator, obj)
    if isinstance(validator, CredentialExpiry):
        return _expiry(validator, obj, now)
    if isinstance(validator, CredentialLifetime):
        return _lifetime(validator, obj)
    if isinstance(validator, HighPrivilegePermission):
        return _permissions(validator, obj)
    if isinstance(validator, SecretWithPrivilegedRole):
        return _secret_with_role(validator, obj, now)
    return _publisher(validator, obj)


def _capped(items: Sequence[JsonValue], key: str) -> dict[str, JsonValue]:
    evidence: dict[str, JsonValue] = {key: list(items[:MAX_EVIDENCE_ITEMS])}
    if len(items) > MAX_EVIDENCE_ITEMS:
        evidence["more"] = len(items) - MAX_EVIDENCE_ITEMS
    return evidence


def _listing(texts: Sequence[str], shown: int = 3) -> str:
    text = "; ".join(texts[:shown])
    return f"{text}; and {len(texts) - shown} more" if len(texts) > shown else text


def _notes(
    validator: NotesListsOwners, obj: GovernedObject, directory: DirectoryLookup | None
) -> list[Finding]:
    params = validator.parameters
    problems = notes_problems(obj.notes, obj, params, directory)
    if not problems:
        return []
    accountable = [
        o.user_principal_name or o.id for o in obj.accountable_owners(allow_guests=params.allow_guests)
    ]
    evidence: dict[str, JsonValue] = {
        "notes": obj.notes,
        **_capped([{"entry": p.entry, "reason": p.reason} for p in problems], "problems"),
        "accountable_owners": list(accountable[:MAX_EVIDENCE_ITEMS]),
    }
    message = f"Notes do not name accountable owners: {_listing([p.describe() for p in problems])}"
    return [_finding(validator, "notes", message, evidence)]


def _ownerless(validator: Ownerless, obj: GovernedObject) -> list[Finding]:
    params = validator.parameters
    owners = obj.all_owners()
    standings = [
        (
            owner,
            owner.standing(
                allow_guests=params.allow_guests,
                allow_service_principals=params.allow_service_principal_owners,
            ),
        )
        for owner in owners
    ]
    if any(standing == "accountable" for _, standing in standings):
        return []
    if not owners:
        message = "No owner"
    else:
        counts: dict[str, int] = {}
        for _, standing in standings:
            counts[standing] = counts.get(standing, 0) + 1
        why = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        message = f"No accountable owner: {len(owners)} owner(s), none an enabled member ({why})"
    evidence = _capped(
        [
            {"id": o.id, "upn": o.user_principal_name, "kind": o.kind, "standing": standing}
            for o, standing in standings
        ],
        "owners",
    )
    return [_finding(validator, "owners", message, evidence)]


def _days_left(end: dt.datetime, now: dt.datetime) -> int:
    return math.floor((end - now) / DAY)


def _expiry(validator: CredentialExpiry, obj: GovernedObject, now: dt.datetime) -> list[Finding]:
    params = validator.parameters
    windows = sorted(params.windows_days)
    widest = dt.timedelta(days=windows[-1])
    findings = []
    for credential in obj.credentials():
        end = credential.end
        if end is None:
            continue
        left = end - now
        if left <= dt.timedelta(0):
            if not params.include_expired:
                continue
            days = _days_left(end, now)
            message = f"{credential.describe(capital=True)} expired on {utc_iso(end)} ({-days} day(s) ago)"
            extra: dict[str, JsonValue] = {"expired": True, "window_days": None, "days_left": days}
        elif left <= widest:
            window = next(w for w in windows if left <= dt.timedelta(days=w))
            days = _days_left(end, now)
            message = (
                f"{credential.describe(capital=True)} expires on {utc_iso(end)}, "
                f"within {window} days ({days} left)"
            )
            extra = {"expired": False, "window_days": window, "days_left": days}
        else:
            continue
        findings.append(
            _finding(validator, credential.subject(), message, {**credential.evidence(), **extra})
        )
    return findings


def _lifetime(validator: CredentialLifetime, obj: GovernedObject) -> list[Finding]:
    params = validator.parameters
    findings = []
    for credential in obj.credentials():
        limit = params.max_secret_days if credential.is_secret else params.max_certificate_days
        baseline = "MS.AAD.5.6v1" if credential.is_secret else "MS.AAD.5.7v1"
        if credential.start is None:
            continue  # no start: the lifetime cannot be known
        if credential.end is None:
            lifetime: float | None = None
            message = f"{credential.describe(capital=True)} never expires (at most {limit} days, {baseline})"
        else:
            span = credential.end - credential.start
            if span <= dt.timedelta(days=limit):
                continue
            lifetime = round(span / DAY, 1)
            message = (
                f"{credential.describe(capital=True)} is valid for {lifetime:g} days, "
                f"more than {limit} ({baseline})"
            )
        evidence: dict[str, JsonValue] = {
            **credential.evidence(),
            "lifetime_days": lifetime,
            "max_days": limit,
            "baseline": baseline,
        }
        findings.append(_finding(validator, credential.subject(), message, evidence))
    return findings


def _permissions(validator: HighPrivilegePermission, obj: GovernedObject) -> list[Finding]:
    params = validator.parameters
    wanted = {p.casefold(): p for p in params.permissions}
    findings: dict[str, Finding] = {}
    for permission in obj.app_permissions:
        if permission.value is None or permission.resource_app_id not in params.resource_app_ids:
            continue
        if permission.value.casefold() not in wanted:
            continue
        subject = f"permission:{permission.resource_app_id}:{permission.value}"
        resource = permission.resource_display_name or permission.resource_app_id
        message = f"Application permission {permission.value} on {resource} is granted"
        evidence: dict[str, JsonValue] = {
            "permission": permission.value,
            "resource_app_id": permission.resource_app_id,
            "resource_display_name": permission.resource_display_name,
            "app_role_id": permission.app_role_id,
            "assignment_id": permission.assignment_id,
            "granted_at": utc_iso(permission.granted_at) if permission.granted_at else None,
        }
        findings.setdefault(subject, _finding(validator, subject, message, evidence))
    return list(findings.values())


def _live_secret(credential: Credential, now: dt.datetime, count_expired: bool) -> bool:
    if credential.kind != "password":
        return False
    return count_expired or credential.end is None or credential.end > now


def _secret_with_role(
    validator: SecretWithPrivilegedRole, obj: GovernedObject, now: dt.datetime
) -> list[Finding]:
    params = validator.parameters
    secrets = [c for c in obj.credentials() if _live_secret(c, now, params.count_expired_secrets)]
    roles = [
        r
        for r in obj.directory_roles
        if r.role_template_id in params.role_template_ids
        and (r.tenant_wide or params.include_scoped_assignments)
    ]
    if not secrets or not roles:
        return []
    role_names = sorted({r.display_name or r.role_template_id for r in roles})
    message = f"Holds the privileged role(s) {', '.join(role_names)} and has {len(secrets)} client secret(s)"
    evidence: dict[str, JsonValue] = {
        **_capped(
            [
                {
                    "role_template_id": r.role_template_id,
                    "display_name": r.display_name,
                    "scope": r.directory_scope_id,
                }
                for r in roles
            ],
            "roles",
        ),
        "secrets": [c.evidence() for c in secrets[:MAX_EVIDENCE_ITEMS]],
    }
    return [_finding(validator, "secrets-and-roles", message, evidence)]


def _publisher(validator: UnverifiedMultitenant, obj: GovernedObject) -> list[Finding]:
    app, sp = obj.application, obj.service_principal
    if app is not None:
        audience, publisher, read_from = app.sign_in_audience, app.verified_publisher, "application"
    else:
        audience, publisher, read_from = sp.sign_in_audience, sp.verified_publisher, "servicePrincipal"
    if audience is None or audience not in validator.parameters.audiences:
        return []
    if publisher is not None and publisher.is_verified:
        return []
    message = f"Multi-tenant app ({audience}) from an unverified publisher"
    evidence: dict[str, JsonValue] = {
        "sign_in_audience": audience,
        "read_from": read_from,
        "publisher_domain": app.publisher_domain if app is not None else None,
        "app_owner_organization_id": sp.app_owner_organization_id,
    }
    return [_finding(validator, "publisher", message, evidence)]


def _finding(
    validator: ValidatorConfig, subject: str, message: str, evidence: dict[str, JsonValue]
) -> Finding:
    return Finding(
        validator_id=validator.id,
        severity=validator.severity,
        subject=subject,
        message=message,
        evidence=evidence,
    )
