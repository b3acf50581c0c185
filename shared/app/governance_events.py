"""The event-driven path of service principal governance: directory audit events the ingest worker
stores become `EvaluateObject` messages, so a change Graph delta does not report (an owner removed, a
permission granted) is evaluated within one poll cycle.

shared.ingestion may not import shared.governance, so the ingest report carries what is needed
(`IngestReport.directory_changes`: each stored entra_audit event with a service principal or
application target, its operation, result and targets) and this module, in the app layer, maps it.

Operations followed (Entra's `activityDisplayName`, as the directory audit log writes them and the
tenant simulator's /_sim/apps controls do), compared ignoring case, spacing and the kind of dash:

- owner added to or removed from a service principal or an application ("Add owner to service
  principal", "Remove owner from application", ...): the object the owner went to (the
  `ServicePrincipal.ObjectID` / `Application.ObjectID` property of the owner target, else the last
  target of that type; the first target is the owner);
- credentials ("Update application \u2013 Certificates and secrets management", with an en dash, and
  "Add / Remove service principal credentials"): the application or service principal;
- permissions ("Add / Remove app role assignment to / from service principal", "Add / Remove
  delegated permission grant"): the client app (`ServicePrincipal.ObjectID`; the first target is the
  resource, e.g. Microsoft Graph);
- "Consent to application", "Add service principal", "Update service principal", "Add application",
  "Update application": the object.

An application target is evaluated through its service principal: the evaluate worker reads the id as
either and finds the principal by the application's appId (shared.governance.pipeline), never the
ingest worker. Failed operations changed nothing and are skipped; ids that are not GUIDs are skipped.
One page's events about one object make one evaluation (the first event is its cause): the
evaluation id is `evaluation_id(tenant, object id, event id)`, so the page's redelivery asks for the
same evaluation, which the service answers from its record. The evaluations of one page share a batch
activity, `activity_id("evaluation", tenant, "event:" + page)`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Literal

from pydantic import ValidationError

from shared.governance.messages import EvaluateObject, activity_id, evaluation_id
from shared.ingestion.ingest import ChangedObject, DirectoryChange, IngestReport
from shared.platform.clock import utc_iso

logger = logging.getLogger(__name__)

Role = Literal["owner", "client", "target"]
"""Where the object is: `owner` the object an owner was added to (owner records), `client` the app a
permission went to (assignment records), `target` the record's service principal or application."""

_SPACES = re.compile(r"\s+")
_DASHES = re.compile(r"[\u2010-\u2015\u2212-]")


def operation_key(operation: str) -> str:
    """An operation name for comparison: Entra's en dash (and a trailing space) in "Update application
    \u2013 Certificates and secrets management" reads the same as a hyphen, any spacing and case."""
    return _SPACES.sub(" ", _DASHES.sub("-", operation)).strip().casefold()


_FOLLOWED: tuple[tuple[str, Role], ...] = (
    ("Add owner to service principal", "owner"),
    ("Remove owner from service principal", "owner"),
    ("Add owner to application", "owner"),
    ("Remove owner from application", "owner"),
    ("Update application \u2013 Certificates and secrets management", "target"),
    ("Add service principal credentials", "target"),
    ("Remove service principal credentials", "target"),
    ("Add app role assignment to service principal", "client"),
    ("Remove app role assignment from service principal", "client"),
    ("Add delegated permission grant", "client"),
    ("Remove delegated permission grant", "client"),
    ("Consent to application", "target"),
    ("Add service principal", "target"),
    ("Update service principal", "target"),
    ("Add application", "target"),
    ("Update application", "target"),
)
OPERATIONS: dict[str, Role] = {operation_key(name): role for name, role in _FOLLOWED}

_OBJECT_TYPES = ("serviceprincipal", "application")
_OWNER_PROPERTIES = ("serviceprincipal.objectid", "application.objectid")
_CLIENT_PROPERTIES = ("serviceprincipal.objectid",)


def _kind(target: ChangedObject) -> str:
    return (target.type or "").casefold()


def _named(targets: list[ChangedObject], properties: tuple[str, ...]) -> str | None:
    for target in targets:
        for name, value in target.object_ids.items():
            if name.casefold() in properties:
                return value
    return None


def changed_object_id(change: DirectoryChange) -> str | None:
    """The id of the service principal or application the change is about; None when the operation is
    not one governance follows, or failed."""
    role = OPERATIONS.get(operation_key(change.operation))
    if role is None or change.result != "success":
        return None
    targets = change.targets
    objects = [t for t in targets if _kind(t) in _OBJECT_TYPES and t.id]
    if role == "owner":
        named = _named(targets, _OWNER_PROPERTIES)
        return named or (objects[-1].id if objects else None)
    if role == "client":
        named = _named(targets, _CLIENT_PROPERTIES)
        return named or (objects[-1].id if objects else None)
    return objects[0].id if objects else None


def evaluation_messages(report: IngestReport, tenant_id: str, now: dt.datetime) -> list[str]:
    """The EvaluateObject messages (queue text, no snapshot) for the page's directory changes."""
    batch = activity_id("evaluation", tenant_id, f"event:{report.blob}")
    causes: dict[str, str] = {}
    for change in report.directory_changes:
        object_id = changed_object_id(change)
        if object_id is not None:
            causes.setdefault(object_id.lower(), change.event_id)
    messages: list[str] = []
    for object_id, cause in causes.items():
        try:
            message = EvaluateObject(
                tenant_id=tenant_id,
                object_id=object_id,
                evaluation_id=evaluation_id(tenant_id, object_id, cause),
                batch_id=batch,
                trigger="event",
                cause=cause,
                observed_at=utc_iso(now),
            )
        except ValidationError:
            logger.warning(
                "directory audit event %s: no evaluation queued (an id out of grammar)", cause[:200]
            )
            continue
        messages.append(message.model_dump_json())
    return messages
