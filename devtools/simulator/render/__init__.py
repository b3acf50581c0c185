"""Materialize a record into the exact JSON a real API sends, on demand.

A record is stored compactly (ids, times, a template index and a per-record seed); its content is
rebuilt from `random.Random(record.seed)` whenever it is served, so it is identical on every call
and the whole day costs little memory.

`TEMPLATES` is the registry of record renderers: record kind -> its `Template`s. A kind is a Graph
source (`entra_audit`, `entra_signin`, `intune_audit`) or a Management Activity API content type
(`Audit.Exchange`, ...). A `Template` is one kind of activity: a name unique within its kind (bursts
look templates up by name, `template_index`), a weight (its share of the generated day; 0: only in
scripted bursts, and those come last, `day_templates`) and a `RecordBuilder` that draws the record's
content. A `Record` stores the index of its template, so the order of each tuple is part of every
seed's day: add templates at the end. `render(record, ctx)` runs the record's builder, then marks
burst records as successful changes by their actor and strips malformed records' id and timestamp.

One module per source: `entra_audit` (Graph directoryAudit), `entra_signins` (Graph signIn),
`intune_audit` (Graph Intune auditEvent) and `management` (the Office 365 common schema plus the
Azure AD, Exchange admin, SharePoint, Teams and DLP schemas, one module each); `common` holds what
they share (`RenderContext`, `Template`, value helpers and catalogues).
"""

from __future__ import annotations

import copy
import random
from typing import TYPE_CHECKING

from devtools.simulator.render import entra_audit, entra_signins, intune_audit
from devtools.simulator.render.common import Json, RecordBuilder, RenderContext, Template, json_encoded
from devtools.simulator.render.entra_audit import GLOBAL_ADMINISTRATOR
from devtools.simulator.render.management import TEMPLATES_BY_CONTENT_TYPE

if TYPE_CHECKING:
    from devtools.simulator.generator import Record

__all__ = [
    "BURST_KINDS",
    "ENTRA_AUDIT",
    "ENTRA_SIGNIN",
    "GLOBAL_ADMINISTRATOR",
    "INTUNE_AUDIT",
    "TEMPLATES",
    "Json",
    "RecordBuilder",
    "RenderContext",
    "Template",
    "day_templates",
    "json_encoded",
    "render",
    "template_index",
]

ENTRA_AUDIT = "entra_audit"
ENTRA_SIGNIN = "entra_signin"
INTUNE_AUDIT = "intune_audit"

TEMPLATES: dict[str, tuple[Template, ...]] = {
    ENTRA_AUDIT: entra_audit.TEMPLATES,
    ENTRA_SIGNIN: entra_signins.TEMPLATES,
    INTUNE_AUDIT: intune_audit.TEMPLATES,
    **TEMPLATES_BY_CONTENT_TYPE,
}

# template_index looks templates up by name: names are unique per kind.
assert all(len({t.name for t in templates}) == len(templates) for templates in TEMPLATES.values())

# The timestamp field a malformed Graph record lacks (Management records lack CreationTime).
_GRAPH_TIME_FIELD = {
    ENTRA_AUDIT: "activityDateTime",
    ENTRA_SIGNIN: "createdDateTime",
    INTUNE_AUDIT: "activityDateTime",
}
# How a burst record of a kind becomes a successful change by its actor.
_MARK_BURST = {ENTRA_AUDIT: entra_audit.mark_burst, INTUNE_AUDIT: intune_audit.mark_burst}


# Scripted bursts of configuration changes (TenantSimulator.add_burst): burst kind -> (source,
# ((template name, weight), ...)). The intune and conditional_access templates are configuration changes
# in the app's drift rules; global_admin and user_deletion are privileged changes for alert rules.
BURST_KINDS: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = {
    "intune": (
        INTUNE_AUDIT,
        (
            ("Patch DeviceConfiguration", 4),
            ("Create DeviceConfiguration", 2),
            ("Delete DeviceConfiguration", 1),
            ("Patch DeviceCompliancePolicy", 3),
            ("Create DeviceCompliancePolicy", 1),
            ("Delete DeviceCompliancePolicy", 1),
            ("Assign MobileApp", 2),
        ),
    ),
    "conditional_access": (
        ENTRA_AUDIT,
        (
            ("Add conditional access policy", 3),
            ("Update conditional access policy", 5),
            ("Delete conditional access policy", 1),
            ("Update named location", 1),
        ),
    ),
    # "Add member to role" records that make someone a Global Administrator.
    "global_admin": (ENTRA_AUDIT, (("Add member to role (Global Administrator)", 1),)),
    # "Delete user" records (category UserManagement).
    "user_deletion": (ENTRA_AUDIT, (("Delete user", 1),)),
}


def template_index(kind: str, name: str) -> int:
    """The position of template `name` in `TEMPLATES[kind]` (what a Record stores)."""
    for index, template in enumerate(TEMPLATES[kind]):
        if template.name == name:
            return index
    raise KeyError(f"no template {name!r} for {kind}")


def day_templates(kind: str) -> tuple[Template, ...]:
    """The templates the generated day draws from: those with a weight (burst-only ones come last)."""
    templates = TEMPLATES[kind]
    count = sum(1 for t in templates if t.weight > 0)
    if any(t.weight <= 0 for t in templates[:count]):
        raise AssertionError(f"{kind}: weightless templates must come after the weighted ones")
    return templates[:count]


def render(record: Record, ctx: RenderContext) -> Json:
    """The record's wire JSON. Malformed records lack their id and their timestamp. A scripted record
    (Tenant.add_directory_audits) carries its JSON and is served as is."""
    if record.body is not None:
        return copy.deepcopy(record.body)
    rng = random.Random(record.seed)  # noqa: S311 - deterministic test data
    template = TEMPLATES[record.kind][record.template]
    body = template.build(rng, ctx, record)
    if record.burst and record.kind in _MARK_BURST:
        _MARK_BURST[record.kind](body, record, ctx)
    if record.malformed:
        if record.kind in _GRAPH_TIME_FIELD:
            body.pop("id", None)
            body.pop(_GRAPH_TIME_FIELD[record.kind], None)
        else:
            body.pop("Id", None)
            body.pop("CreationTime", None)
    return body
