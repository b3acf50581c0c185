"""Callers of the API as the platform presents them: a Static Web Apps client principal header, and
the API's app registration that Entra ID (here the tenant simulator) issues access tokens for."""

from __future__ import annotations

import base64
import json
from typing import Literal

from devtools.simulator.signing import ApiRegistration

# The API's app registration in the tests: Application (client) ID and Application ID URI.
API_CLIENT_ID = "5b0f3c9e-2d4a-4f61-9a7e-3c1d2b8e6f40"
API_APP_ID_URI = "api://aoc-functions-e2e"


def aoc_api(
    version: Literal[1, 2], client_id: str = API_CLIENT_ID, app_id_uri: str = API_APP_ID_URI
) -> ApiRegistration:
    """The API's registration with `accessTokenAcceptedVersion` set to `version` (1 or 2)."""
    return ApiRegistration(client_id=client_id, app_id_uri=app_id_uri, access_token_version=version)


def swa_principal(roles: list[str], user: str = "ana@contoso.com") -> str:
    """An `x-ms-client-principal` header value, as the SWA linked backend sends it."""
    document = {"identityProvider": "aad", "userId": "u1", "userDetails": user, "userRoles": roles}
    return base64.b64encode(json.dumps(document).encode()).decode()
