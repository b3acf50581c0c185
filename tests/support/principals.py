"""A Static Web Apps client principal header, as the SWA linked backend sends it."""

from __future__ import annotations

import base64
import json


def swa_principal(roles: list[str], user: str = "ana@contoso.com") -> str:
    document = {"identityProvider": "aad", "userId": "u1", "userDetails": user, "userRoles": roles}
    return base64.b64encode(json.dumps(document).encode()).decode()
