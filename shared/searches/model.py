"""A saved search: a name for one state of the event explorer (its query string), private to its owner or
shared with an app role, optionally pinned to the home page.

One document per search in the Cosmos `searches` container, partition key the tenant id. The owner is
the caller's object id (the token's `oid` claim, or the platform's user id in SWA mode), never a value
the caller sends. Who may see a search (`visible_to`) is decided here; the API layer adds the privacy
rule and the validation of the query string.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

DOCUMENT_TYPE: Literal["saved_search"] = "saved_search"
Visibility = Literal["private", "role"]
# The app roles a search may be shared with (shared.api.auth.Role without AOC.Privacy, which grants a
# view of data rather than a place in the Reader < Analyst < Admin order).
ShareRole = Literal["AOC.Reader", "AOC.Analyst", "AOC.Admin"]
SHARE_ROLES: tuple[str, ...] = ("AOC.Reader", "AOC.Analyst", "AOC.Admin")


class SavedSearch(BaseModel):
    """The stored document (Cosmos system fields such as `_etag` are not part of it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    pk: str  # the tenant id
    type: Literal["saved_search"] = DOCUMENT_TYPE
    name: str
    query: str  # the explorer's query string, canonical (shared.api.searches_api.canonical_query)
    visibility: Visibility
    role: ShareRole | None = None  # with visibility "role": who besides the owner sees it
    pinned: bool = False
    owner: str  # the owner's object id
    owner_name: str  # the owner's sign-in name when it was last saved, for display
    created_at: str
    updated_at: str

    def document(self) -> dict[str, Any]:
        return self.model_dump()

    def visible_to(self, subject: str, roles: Collection[str]) -> bool:
        """The owner sees it; so does anyone holding the role it is shared with (roles as granted, with
        Admin implying Analyst and Reader)."""
        if self.owner == subject:
            return True
        return self.visibility == "role" and self.role is not None and self.role in roles

    def settings(self) -> dict[str, Any]:
        """What its owner chose: the fields a change may set, and the audit log records."""
        return {
            "name": self.name,
            "query": self.query,
            "visibility": self.visibility,
            "role": self.role,
            "pinned": self.pinned,
        }


def search_id(tenant_id: str, owner: str, idempotency_key: str | None) -> str:
    """A new search's id: random, or derived from the owner and the Idempotency-Key, so that a retried
    create finds the search its first attempt made (shared.platform.ids.SEARCH_ID)."""
    if idempotency_key is None:
        return f"srch-{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{tenant_id}|{owner}|{idempotency_key}".encode()).hexdigest()
    return f"srch-{digest[:32]}"
