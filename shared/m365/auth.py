"""Access tokens for Microsoft Graph, the Management Activity API and Azure DevOps: which provider,
built from settings.

- `msal`: client credentials of an app registration (shared.m365.msal_auth);
- `identity`: azure-identity (managed identity, or the developer's own sign-in);
- `static`: one fixed token, for development against a local service.

Every provider caches one token per scope (shared.m365.token_cache). Secrets (client secret, private
key, tokens) never appear in an exception message, a log line or a repr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from shared.m365.msal_auth import MsalHttpClient, MsalTokenProvider
from shared.m365.token_cache import (
    DEFAULT_REFRESH_MARGIN_SECONDS,
    AuthError,
    RefreshableTokenProvider,
    ScopedTokenCache,
    TokenProvider,
    require_scope,
)
from shared.platform.clock import Clock, SystemClock

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = [
    "AuthError",
    "AzureIdentityTokenProvider",
    "MsalHttpClient",
    "MsalTokenProvider",
    "RefreshableTokenProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "TokenProviderKind",
    "build_token_provider",
    "identity_credential",
]

TokenProviderKind = Literal["msal", "identity", "static"]


# --- azure-identity (managed identity, developer credentials) ------------------------------------


class AzureIdentityTokenProvider:
    """Tokens from an azure-identity credential (ManagedIdentityCredential, DefaultAzureCredential)."""

    def __init__(
        self,
        credential: TokenCredential,
        *,
        clock: Clock | None = None,
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
    ) -> None:
        self._credential = credential
        self._clock = clock or SystemClock()
        self._cache = ScopedTokenCache(self._acquire, self._clock, refresh_margin_seconds)

    def __repr__(self) -> str:
        return f"AzureIdentityTokenProvider(credential={type(self._credential).__name__})"

    def _acquire(self, scope: str) -> tuple[str, float]:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            access = self._credential.get_token(scope)
        except ClientAuthenticationError as exc:
            raise AuthError(
                f"{type(self._credential).__name__} could not get a token for {scope}: {exc.message}",
                error=type(exc).__name__,
            ) from exc
        lifetime = access.expires_on - self._clock.now().timestamp()
        return access.token, lifetime

    def get_token(self, scope: str) -> str:
        require_scope(scope)
        return self._cache.get(scope)

    def invalidate(self, scope: str, token: str | None = None) -> None:
        self._cache.invalidate(scope, token)


def identity_credential(client_id: str | None, *, authority_host: str | None = None) -> TokenCredential:
    """ManagedIdentityCredential for a user-assigned identity (`client_id`), else DefaultAzureCredential.

    `authority_host` (e.g. "https://login.microsoftonline.us") is for DefaultAzureCredential's
    developer credentials in a national cloud; managed identity needs none.
    """
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    if authority_host:
        return DefaultAzureCredential(authority=authority_host)
    return DefaultAzureCredential()


# --- static (development) --------------------------------------------------------------------------


class StaticTokenProvider:
    """The same token for every scope: for development against a local service."""

    def __init__(self, token: str) -> None:
        if not token or not token.strip():
            raise ValueError("token must be a non-empty string")
        self._token = token.strip()

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=***)"

    def get_token(self, scope: str) -> str:
        require_scope(scope)
        return self._token

    def invalidate(self, scope: str, token: str | None = None) -> None:
        """Nothing to refresh: the token is fixed."""


def build_token_provider(
    kind: TokenProviderKind,
    *,
    tenant_id: str | None = None,
    client_id: str | None = None,
    authority_host: str | None = None,
    client_secret: str | None = None,
    certificate_pem: str | None = None,
    certificate_thumbprint: str | None = None,
    managed_identity_client_id: str | None = None,
    static_token: str | None = None,
    timeout_seconds: float = 10.0,
    clock: Clock | None = None,
) -> TokenProvider:
    """The provider for `kind`; ValueError naming what is missing (never echoing a secret)."""
    if kind == "msal":
        missing = [
            name
            for name, value in (
                ("tenant_id", tenant_id),
                ("client_id", client_id),
                ("authority_host", authority_host),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"msal token provider needs {', '.join(missing)}")
        return MsalTokenProvider(
            tenant_id or "",
            client_id or "",
            authority_host or "",
            client_secret=client_secret or None,
            certificate_pem=certificate_pem or None,
            certificate_thumbprint=certificate_thumbprint or None,
            timeout_seconds=timeout_seconds,
            clock=clock,
        )
    if kind == "identity":
        return AzureIdentityTokenProvider(
            identity_credential(managed_identity_client_id or None, authority_host=authority_host or None),
            clock=clock,
        )
    if kind == "static":
        if not static_token:
            raise ValueError("static token provider needs static_token")
        return StaticTokenProvider(static_token)
    raise ValueError(f"unknown token provider kind {kind!r}: expected msal, identity or static")
