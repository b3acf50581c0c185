"""Sends the one write governance ever makes: a service principal's `notes`.

Graph v1.0 "Update servicePrincipal": `PATCH /servicePrincipals/{id}` with `{"notes": "..."}`, answered
`204 No Content`. Application permissions, least privileged first: Application.ReadWrite.OwnedBy (only
service principals whose application this app owns), Application.ReadWrite.All. Report-only mode never
calls this and needs neither.

The request goes through the app's Graph client (shared.m365.http_client.ApiClient: its token provider,
timeouts, and tenacity retries of 429, 5xx and lost connections honouring Retry-After). Repeating this
PATCH is harmless: it sets the same value again. What keeps it to one PATCH per object and evaluation is
the claim the update takes first (shared.governance.service, shared.governance.store.UpdateClaims).
"""

from __future__ import annotations

from typing import Protocol

from shared.governance.model import GUID
from shared.governance.records import NotesPatch
from shared.m365.http_client import ApiClient


class GraphWriter(Protocol):
    def send(self, patch: NotesPatch) -> None:
        """Send the PATCH; raise (shared.m365.http_client.ApiError) when Graph refuses it."""
        ...


class GraphNotesWriter:
    """GraphWriter over the app's ApiClient. It sends only `notes` PATCHes of a service principal under
    its own Graph root: anything else is a ValueError before any request."""

    def __init__(self, api: ApiClient, scope: str, graph_base: str) -> None:
        self._api = api
        self._scope = scope
        self._prefix = f"{graph_base.rstrip('/')}/v1.0/servicePrincipals/"

    def send(self, patch: NotesPatch) -> None:
        object_id = patch.url.removeprefix(self._prefix)
        if object_id == patch.url or not GUID.fullmatch(object_id):
            raise ValueError("only PATCH {graph}/v1.0/servicePrincipals/{id} is ever sent")
        if set(patch.body) != {"notes"}:
            raise ValueError("only the notes property is ever written")
        self._api.request("PATCH", patch.url, scope=self._scope, json=dict(patch.body))
