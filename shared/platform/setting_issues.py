"""Settings that arrived as unresolved Key Vault references, and secrets the configuration needs but lacks.

App Service hands a Key Vault reference it cannot resolve (secret missing, the identity's access not in
effect yet) to the app as its own literal text. Such a value is never a usable setting, least of all a
secret: the settings model drops it (the field falls back to its default) and reports it by name here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from shared.platform.settings import AppSettings

KEY_VAULT_REFERENCE_PREFIX = "@microsoft.keyvault("
_KEY_VAULT_SECRET = re.compile(r"SecretName=([^;)\s]+)|/secrets/([^/;)\s]+)", re.IGNORECASE)


def is_key_vault_reference(value: object) -> bool:
    """Whether a raw setting value is an (unresolved) `@Microsoft.KeyVault(...)` reference."""
    return isinstance(value, str) and value.strip().lower().startswith(KEY_VAULT_REFERENCE_PREFIX)


def key_vault_secret_name(reference: str) -> str | None:
    """The secret a reference names (`SecretName=` or a `SecretUri=` path); not a secret itself."""
    match = _KEY_VAULT_SECRET.search(reference)
    return (match.group(1) or match.group(2)) if match else None


class SettingIssue(BaseModel):
    """A setting the app needs that is missing, or that arrived as an unresolved Key Vault reference."""

    setting: str = Field(description="the app-setting name, as Azure spells it")
    problem: Literal["unresolved_key_vault_reference", "missing"]
    secret_name: str | None = Field(default=None, description="the Key Vault secret the reference names")
    detail: str


# What stops working without each setting that configuration_issues() checks.
_CONSEQUENCES = {
    "ALERT_CHANNELS": "no notification is sent (alerts are only stored)",
    "DEVOPS_PAT": "no backup pipeline can be queued",
    "M365_CLIENT_SECRET": "no Microsoft 365 token can be had and nothing is collected",
    "M365_CERTIFICATE_PEM": "no Microsoft 365 token can be had and nothing is collected",
    "API_CONTINUATION_SECRET": "next-page links are signed with a per-instance key and fail on another "
    "instance or after a restart",
}


def configuration_issues(settings: AppSettings) -> list[SettingIssue]:
    """Unresolved Key Vault references, and secrets this configuration needs that are not set.

    Names and explanations only, never a value, so the list can go into /api/health and the logs.
    """
    unresolved = settings.unresolved_key_vault_references
    issues = []
    for name, secret in sorted(unresolved.items()):
        named = f" to secret {secret!r}" if secret else ""
        consequence = f", and {_CONSEQUENCES[name]}" if name in _CONSEQUENCES else ""
        issues.append(
            SettingIssue(
                setting=name,
                problem="unresolved_key_vault_reference",
                secret_name=secret,
                detail=f"the Key Vault reference{named} was not resolved (the secret does not exist, "
                "or the app's identity cannot read it yet), so the setting is treated as unset"
                f"{consequence}. Set the secret, then restart the app.",
            )
        )

    def missing(name: str, why: str) -> None:
        if name not in unresolved:
            issues.append(
                SettingIssue(setting=name, problem="missing", detail=f"{why}, so {_CONSEQUENCES[name]}")
            )

    if not settings.alert_channels:
        missing("ALERT_CHANNELS", "no notification channels are configured")
    if settings.probe_enabled and settings.devops_auth_mode == "pat" and not settings.devops_pat:
        missing("DEVOPS_PAT", "DEVOPS_AUTH_MODE is pat but DEVOPS_PAT is not set")
    credentials = ("M365_CLIENT_SECRET", "M365_CERTIFICATE_PEM")
    if (
        settings.auth_mode == "msal"
        and not (settings.client_secret or settings.certificate_pem)
        and not set(credentials) & set(unresolved)
    ):
        missing("M365_CLIENT_SECRET", "M365_AUTH_MODE is msal but neither credential is set")
    if not settings.api_continuation_secret:
        missing("API_CONTINUATION_SECRET", "API_CONTINUATION_SECRET is not set")
    return issues
