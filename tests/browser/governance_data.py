"""What the Governance page tests see, seeded through the app's own governance service and stores into the
Cosmos DB container the stack's host reads (the stack's tenant partition).

- `payroll`: "Payroll sync", seen passing (its notes name its two owners: the last-known-good), then
  failing notes-lists-owners after its notes became free text. ReportOnly mode records the exact PATCH
  that would restore the last-known-good notes.
- `expiring`: "Backup agent", an application secret that ends in 5 days and lived longer than 180 days
  (credential-expiry and credential-lifetime, with their evidence).
- `ownerless`: OWNERLESS objects without owners or notes (ownerless and notes-lists-owners each): more
  findings than one page of the console's list holds.
- `accepted`: the first ownerless object, whose ownerless risk an admin accepted (accept_risk).

The evaluations run as one batch of a discovery run recorded as it ended, so the activities list holds a
discovery and an evaluation batch with their counts, and an update batch whose one PATCH failed. Times
are the wall clock's (the host's clock decides whether an exception is still active).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from typing import Any

from shared.governance.config import load_default_validators
from shared.governance.messages import activity_id, evaluation_id
from shared.governance.model import GovernedObject
from shared.governance.records import (
    ActivityCounts,
    ActivityError,
    ActivityRecord,
    FindingRecord,
    Remediation,
)
from shared.governance.service import Actor, GovernanceService
from shared.governance.store import (
    CosmosActivityStore,
    CosmosAuditSink,
    CosmosGovernanceStore,
    TableUpdateClaims,
)
from shared.platform.clients import get_clients
from shared.platform.clock import SystemClock, utc_iso
from shared.platform.resources import CosmosContainers, Tables
from tests.browser.helpers import Console

GRAPH = "https://graph.microsoft.com"
OWNERLESS = 26
ADMIN = Actor(name="seed-admin@contoso.com", id="seed-admin", auth="user")


@dataclass(frozen=True)
class GovernanceSeed:
    tenant: str
    payroll: str
    expiring: str
    ownerless: tuple[str, ...]
    accepted: str
    accepted_reason: str
    remediation: Remediation  # the payroll object's, as its last evaluation recorded it
    last_known_good_notes: str
    findings: tuple[FindingRecord, ...]  # every finding as the evaluations and the exception left them
    discovery_id: str
    batch_id: str
    update_id: str  # an update batch whose one PATCH failed
    update_error: str
    names: dict[str, str]  # object id -> display name


def _user(upn: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": str(uuid.uuid4()),
        "userPrincipalName": upn,
        "displayName": upn.split("@")[0].title(),
        "accountEnabled": True,
        "userType": "Member",
    }


def _sp(object_id: str, name: str, notes: str | None, **more: Any) -> dict[str, Any]:
    return {
        "id": object_id,
        "appId": str(uuid.uuid4()),
        "displayName": name,
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMyOrg",
        "notes": notes,
        **more,
    }


def service() -> GovernanceService:
    """The service as the host's composition root builds it in ReportOnly mode (no Graph writer)."""
    clients = get_clients()
    container = clients.cosmos_container(CosmosContainers.GOVERNANCE.name)
    return GovernanceService(
        CosmosGovernanceStore(container),
        CosmosActivityStore(container),
        CosmosAuditSink(clients.cosmos_container(CosmosContainers.AUDIT.name)),
        TableUpdateClaims(clients.table(Tables.GOVERNANCE_UPDATES)),
        None,
        load_default_validators(),
        mode="ReportOnly",
        graph_base=GRAPH,
    )


@functools.cache
def seed_governance(console: Console) -> GovernanceSeed:
    """Once per session (the console's stack is too)."""
    tenant = console.tenant_id
    svc = service()
    activities = CosmosActivityStore(get_clients().cosmos_container(CosmosContainers.GOVERNANCE.name))
    now = SystemClock().now().replace(microsecond=0)
    started = now - dt.timedelta(hours=1)
    run = uuid.uuid4().hex
    discovery = activity_id("discovery", tenant, run)
    batch = activity_id("evaluation", tenant, discovery)
    activities.start(
        ActivityRecord(
            id=discovery,
            pk=tenant,
            kind="discovery",
            trigger="timer",
            started_at=utc_iso(started),
            lock="acquired",
        )
    )

    owners = [_user("alice@contoso.com"), _user("bob@contoso.com")]
    good_notes = "alice@contoso.com; bob@contoso.com"
    payroll = str(uuid.uuid4())
    expiring = str(uuid.uuid4())
    ownerless = tuple(str(uuid.uuid4()) for _ in range(OWNERLESS))
    names = {payroll: "Payroll sync", expiring: "Backup agent"}
    names.update({oid: f"Legacy connector {i:02d}" for i, oid in enumerate(ownerless, 1)})

    def evaluate(obj: GovernedObject, at: dt.datetime, cause: str) -> None:
        svc.evaluate(
            tenant,
            obj,
            at,
            evaluation_id=evaluation_id(tenant, obj.id, cause),
            batch_id=batch,
            trigger="discovery",
        )

    # Payroll sync passes (the last-known-good), then its notes become free text.
    evaluate(
        GovernedObject.from_graph(_sp(payroll, names[payroll], good_notes), owners=owners), started, "first"
    )
    later = started + dt.timedelta(minutes=10)
    evaluate(
        GovernedObject.from_graph(_sp(payroll, names[payroll], "Payroll team"), owners=owners), later, run
    )
    secret = {
        "keyId": str(uuid.uuid4()),
        "displayName": "nightly",
        "hint": "x7Q",
        "startDateTime": utc_iso(now - dt.timedelta(days=200)),
        "endDateTime": utc_iso(now + dt.timedelta(days=5)),
    }
    expiring_sp = _sp(expiring, names[expiring], "alice@contoso.com", passwordCredentials=[secret])
    evaluate(GovernedObject.from_graph(expiring_sp, owners=owners[:1]), later, run)
    for oid in ownerless:
        evaluate(GovernedObject.from_graph(_sp(oid, names[oid], None), owners=[]), later, run)
    evaluated = 2 + OWNERLESS
    activities.finish(
        tenant,
        discovery,
        later + dt.timedelta(minutes=1),
        status="succeeded",
        counts=ActivityCounts(discovered=evaluated),
        details={"mode": "incremental"},
    )

    # An update batch whose one notes PATCH Graph refused: the activities list shows its error.
    update = activity_id("update", tenant, discovery)
    update_error = "PATCH servicePrincipals: 403 Authorization_RequestDenied"
    failed_at = later + dt.timedelta(minutes=1)
    activities.add(
        tenant,
        update,
        payroll,
        ActivityCounts(errors=1),
        failed_at,
        kind="update",
        trigger="discovery",
        error=ActivityError(at=utc_iso(failed_at), message=update_error, object_id=payroll),
    )

    reason = "Vendor-managed connector; owner assignment tracked in CHG-1042"
    svc.accept_risk(
        tenant,
        ownerless[0],
        "ownerless",
        reason,
        now + dt.timedelta(days=30),
        ADMIN,
        later + dt.timedelta(minutes=2),
    )

    store = CosmosGovernanceStore(get_clients().cosmos_container(CosmosContainers.GOVERNANCE.name))
    findings: list[FindingRecord] = []
    remediation: Remediation | None = None
    for oid in (payroll, expiring, *ownerless):
        state = store.object_state(tenant, oid)
        findings.extend(stored.value for stored in state.findings.values())
        if oid == payroll:
            assert state.record is not None
            remediation = state.record.value.remediation
    assert remediation is not None, "the payroll evaluation planned no remediation"
    assert remediation.request is not None, "the payroll evaluation planned no PATCH"
    return GovernanceSeed(
        tenant=tenant,
        payroll=payroll,
        expiring=expiring,
        ownerless=ownerless,
        accepted=ownerless[0],
        accepted_reason=reason,
        remediation=remediation,
        last_known_good_notes=good_notes,
        findings=tuple(findings),
        discovery_id=discovery,
        batch_id=batch,
        update_id=update,
        update_error=update_error,
        names=names,
    )
