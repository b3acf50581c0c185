"""Suppressions ("suppress similar"): an admin's exception for one rule and group, with a reason and an
expiry. While one is active, the group's matches are recorded (the match ledger, and a count here) but
open or grow no alert and notify no one; once it expires, alerting is as before.

A suppression is a document of the alerts container, in the tenant's partition beside the alerts, with
`"type": "suppression"` (every alert query filters on `type`). Its id is a fingerprint of tenant, rule
and group, so the alert service finds it with one point read per (rule, group) and batch, and there is
at most one per rule and group: suppressing again replaces it under its ETag.

`matches` counts distinct matched events: the last `MAX_MATCH_IDS` event ids are kept, so a redelivered
batch (the queue delivers at least once) counts once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any, Literal

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosAccessConditionFailedError
from pydantic import BaseModel, Field

from shared.alerts.ledger import MatchRow
from shared.platform.clock import parse_utc, utc_iso
from shared.platform.cosmos import Mutation, read_or_none, replace_unchanged, update_unchanged
from shared.platform.ids import storage_id

MAX_REASON_LENGTH = 500
MAX_SUPPRESSION_DAYS = 90
LISTED_AFTER_EXPIRY = dt.timedelta(days=30)  # GET /api/suppressions shows expired ones this long
MAX_MATCH_IDS = 100  # the last event ids counted, so a redelivered batch counts once


class Suppression(BaseModel):
    """The stored document (the API shows it without `match_ids`, with `active` and `etag`)."""

    id: str
    pk: str
    type: Literal["suppression"] = "suppression"
    tenant_id: str
    rule_id: str
    group_key: str
    group: dict[str, str] = Field(default_factory=dict)
    title: str = Field(description="the title of the alert it was made from (the rule's)")
    sample: dict[str, Any] = Field(
        default_factory=dict, description="service and operation of that alert, for the privacy policy"
    )
    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH)
    created_by: str
    created_at: str
    expires_at: str
    source_alert_id: str
    matches: int = Field(default=0, ge=0)
    last_match_at: str | None = None
    match_ids: list[str] = Field(default_factory=list, max_length=MAX_MATCH_IDS)


def suppression_id(tenant_id: str, rule_id: str, group_key: str) -> str:
    """The one id a rule and group's suppression has (shared.platform.ids.SUPPRESSION_ID)."""
    text = f"suppression\x1f{tenant_id}\x1f{rule_id}\x1f{group_key}"
    return "sup-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def is_active(document: dict[str, Any], now: dt.datetime) -> bool:
    """Whether the suppression holds at `now` (the clock, not the matched events' times, decides)."""
    return document.get("type") == "suppression" and now < parse_utc(str(document["expires_at"]))


def new_suppression(
    alert: dict[str, Any],
    reason: str,
    expires_at: dt.datetime,
    by: str,
    now: dt.datetime,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """The suppression of `alert`'s rule and group. Replacing one that is still active keeps its count
    of matches (they were suppressed under it); an expired one starts again from zero."""
    tenant_id = str(alert["pk"])
    rule_id = str(alert["rule_id"])
    group_key = str(alert.get("group_key") or "")
    sample = alert.get("sample") or {}
    kept = previous if previous is not None and is_active(previous, now) else None
    document = Suppression(
        id=suppression_id(tenant_id, rule_id, group_key),
        pk=tenant_id,
        tenant_id=tenant_id,
        rule_id=rule_id,
        group_key=group_key,
        group={str(k): str(v) for k, v in (alert.get("group") or {}).items()},
        title=str(alert.get("title") or rule_id),
        sample={"service": sample.get("service"), "operation": sample.get("operation")},
        reason=reason,
        created_by=by,
        created_at=utc_iso(now),
        expires_at=utc_iso(expires_at),
        source_alert_id=str(alert["id"]),
        matches=int(kept.get("matches") or 0) if kept else 0,
        last_match_at=kept.get("last_match_at") if kept else None,
        match_ids=list(kept.get("match_ids") or [])[-MAX_MATCH_IDS:] if kept else [],
    )
    return document.model_dump()


def record_matches(document: dict[str, Any], rows: Iterable[MatchRow]) -> bool:
    """Count the matches whose event this suppression has not counted yet; False when there are none."""
    seen = list(document.get("match_ids") or [])
    known = set(seen)
    fresh = sorted({row.event_id: row for row in rows if row.event_id not in known}.values())
    if not fresh:
        return False
    seen.extend(row.event_id for row in fresh)
    last = max(
        [row.timestamp for row in fresh]
        + ([document["last_match_at"]] if document.get("last_match_at") else [])
    )
    document.update(
        matches=int(document.get("matches") or 0) + len(fresh),
        last_match_at=last,
        match_ids=seen[-MAX_MATCH_IDS:],
    )
    return True


def etag_matches(if_match: str, etag: object) -> bool:
    """Whether an If-Match header names `etag`: `*`, or one of its comma-separated tags (quoted or
    not, a weak `W/` prefix ignored)."""

    def bare(tag: str) -> str:
        tag = tag.strip()
        tag = tag[2:] if tag.startswith("W/") else tag
        return tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else tag

    if not isinstance(etag, str) or not etag:
        return False
    tags = [t for t in if_match.split(",") if t.strip()]
    return any(t.strip() == "*" or bare(t) == bare(etag) for t in tags)


class PreconditionFailedError(Exception):
    """The suppression's ETag is no longer the one it was read with."""


class SuppressionStore:
    """Suppression documents in the alerts container: point reads, create-or-replace under the ETag,
    ETag-guarded updates and deletes. Every id goes through shared.platform.ids.storage_id."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def get(self, tenant_id: str, suppression_id: str) -> dict[str, Any] | None:
        found = read_or_none(self._container, suppression_id, tenant_id)
        return found if found is not None and found.get("type") == "suppression" else None

    def put(self, document: dict[str, Any], etag: str | None) -> dict[str, Any]:
        """Create the suppression, or replace the one stored if its ETag is still `etag` (None: only
        create). Raises CosmosResourceExistsError or CosmosAccessConditionFailedError on a lost race."""
        storage_id(document.get("id"))
        if etag is None:
            return dict(self._container.create_item(document))
        return replace_unchanged(self._container, document, etag)

    def update(
        self, tenant_id: str, suppression_id: str, mutate: Mutation, current: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Read (unless `current` is given), mutate, replace under the ETag; None when it is gone."""
        stored, _ = update_unchanged(self._container, suppression_id, tenant_id, mutate, current=current)
        return stored

    def delete(self, tenant_id: str, suppression_id: str, etag: str) -> None:
        """Delete it if its ETag is still `etag`: PreconditionFailedError when it changed meanwhile
        (CosmosResourceNotFoundError when it is gone)."""
        storage_id(suppression_id)
        try:
            self._container.delete_item(
                suppression_id,
                partition_key=tenant_id,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except CosmosAccessConditionFailedError:
            raise PreconditionFailedError(suppression_id) from None
