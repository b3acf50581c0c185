"""Access tokens for Microsoft Graph and the Management Activity API (client credentials).

Every provider caches one token per scope in the process and asks for a new one `refresh_margin`
(5 minutes, or half the lifetime of a short-lived token) before the token expires, timed by the
injected Clock. Concurrent callers for one scope wait for a single token request.

Secrets (client secret, private key, tokens) never appear in an exception message, a log line or a
repr.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests

from shared.platform.clock import Clock, SystemClock
from shared.platform.redact import redact

if TYPE_CHECKING:
    import msal
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

DEFAULT_REFRESH_MARGIN_SECONDS = 300.0
TokenProviderKind = Literal["msal", "identity", "static"]


class AuthError(Exception):
    """A token could not be obtained. The message carries the service's error, never a secret."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        error_description: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.error = error
        self.error_description = redact(error_description) if error_description else None
        self.correlation_id = correlation_id


class TokenProvider(Protocol):
    def get_token(self, scope: str) -> str:
        """A bearer token for `scope` (e.g. "https://graph.microsoft.com/.default"); AuthError if none."""
        ...


@runtime_checkable
class RefreshableTokenProvider(Protocol):
    """A TokenProvider whose cached token can be dropped, e.g. after the API answered 401."""

    def get_token(self, scope: str) -> str: ...

    def invalidate(self, scope: str, token: str | None = None) -> None:
        """Forget the cached token for `scope` (only if it is still `token`, when one is given)."""
        ...


@dataclass(frozen=True)
class _CachedToken:
    token: str
    refresh_at: float  # clock.monotonic() value


class _ScopedTokenCache:
    """One token per scope, fetched under a per-scope lock and kept until `refresh_at`."""

    def __init__(
        self,
        fetch: Callable[[str], tuple[str, float]],
        clock: Clock,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_SECONDS,
    ) -> None:
        self._fetch = fetch  # scope -> (token, lifetime in seconds from now)
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._entries: dict[str, _CachedToken] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, scope: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(scope, threading.Lock())

    def _fresh(self, scope: str) -> str | None:
        entry = self._entries.get(scope)
        if entry is not None and self._clock.monotonic() < entry.refresh_at:
            return entry.token
        return None

    def get(self, scope: str) -> str:
        token = self._fresh(scope)
        if token is not None:
            return token
        with self._lock_for(scope):
            token = self._fresh(scope)
            if token is not None:
                return token
            started = self._clock.monotonic()
            token, lifetime = self._fetch(scope)
            margin = min(self._refresh_margin, max(lifetime, 0.0) / 2)
            self._entries[scope] = _CachedToken(token, started + lifetime - margin)
            return token

    def invalidate(self, scope: str, token: str | None = None) -> None:
        with self._lock_for(scope):
            entry = self._entries.get(scope)
            if entry is not None and (token is None or entry.token == token):
                del self._entries[scope]


def _require_scope(scope: str) -> None:
    if not scope or not scope.strip():
        raise ValueError("scope must be a non-empty string")


# --- MSAL (client secret or certificate) ----------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _RewrittenResponse:
    """The msal Response shape (status_code, text, headers, raise_for_status) over a requests.Response."""

    def __init__(self, response: requests.Response, text: str) -> None:
        self._response = response
        self.status_code = response.status_code
        self.text = text
        self.headers = response.headers

    def raise_for_status(self) -> None:
        self._response.raise_for_status()


class MsalHttpClient:
    """The http_client given to msal: a `requests.Session` with a timeout on every call.

    msal only accepts https authorities. For a plain-http token service on a loopback address (the local
    tenant simulator) msal is given the https form of the authority; this client sends those requests
    over http, and turns the service's own "http://host:port" URLs in its JSON answers (the
    openid-configuration's token_endpoint, issuer, ...) into "https://host:port" so msal accepts them.
    """

    def __init__(
        self,
        timeout_seconds: float,
        *,
        plain_http_netloc: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._session = session or requests.Session()
        self._plain_http_netloc = plain_http_netloc.lower() if plain_http_netloc else None

    def _outgoing(self, url: str) -> tuple[str, bool]:
        if self._plain_http_netloc:
            parts = urlsplit(url)
            if parts.scheme == "https" and parts.netloc.lower() == self._plain_http_netloc:
                return parts._replace(scheme="http").geturl(), True
        return url, False

    def _incoming(self, response: requests.Response) -> requests.Response | _RewrittenResponse:
        try:
            document = json.loads(response.text)
        except ValueError:
            return response
        if not isinstance(document, dict):
            return response
        http_origin = f"http://{self._plain_http_netloc}"
        changed = False
        for key, value in document.items():
            if isinstance(value, str) and value.lower().startswith(http_origin):
                document[key] = "https://" + value[len("http://") :]
                changed = True
        return _RewrittenResponse(response, json.dumps(document)) if changed else response

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response | _RewrittenResponse:
        kwargs.setdefault("timeout", self._timeout)
        target, rewritten = self._outgoing(url)
        response = self._session.request(method, target, **kwargs)
        return self._incoming(response) if rewritten else response

    def get(
        self, url: str, params: Any = None, headers: Any = None, **kwargs: Any
    ) -> requests.Response | _RewrittenResponse:
        return self._request("GET", url, params=params, headers=headers, **kwargs)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> requests.Response | _RewrittenResponse:
        return self._request("POST", url, params=params, data=data, headers=headers, **kwargs)

    def close(self) -> None:
        self._session.close()


_CERTIFICATE_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _certificate_credential(pem: str, thumbprint: str | None) -> dict[str, str]:
    if "PRIVATE KEY-----" not in pem:
        raise ValueError("certificate_pem must contain the private key in PEM form")
    credential = {"private_key": pem}
    if thumbprint:
        credential["thumbprint"] = thumbprint.replace(":", "").strip()
        return credential
    certificates = _CERTIFICATE_BLOCK.findall(pem)
    if not certificates:
        raise ValueError(
            "certificate_pem has no certificate: add the certificate to the PEM, or pass "
            "certificate_thumbprint"
        )
    # msal derives the SHA-256 thumbprint from it (and sends it as x5c).
    credential["public_certificate"] = "\n".join(certificates)
    return credential


class MsalTokenProvider:
    """Client credentials through `msal.ConfidentialClientApplication.acquire_token_for_client`.

    `authority_host` is a cloud's authority (e.g. "https://login.microsoftonline.com", a bare host name
    means https) or a loopback "http://127.0.0.1:7072" token service. msal is built on first use (it
    fetches the tenant's openid-configuration then) with instance discovery off, so it calls nothing but
    `authority_host`, and with an http client that puts `timeout_seconds` on every call. Token expiry
    follows `clock` (msal's own cache is cleared for the scope before each request on the wire).
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        authority_host: str,
        *,
        client_secret: str | None = None,
        certificate_pem: str | None = None,
        certificate_thumbprint: str | None = None,
        timeout_seconds: float = 10.0,
        clock: Clock | None = None,
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        session: requests.Session | None = None,
    ) -> None:
        if not tenant_id or not tenant_id.strip():
            raise ValueError("tenant_id is required")
        if not client_id or not client_id.strip():
            raise ValueError("client_id is required")
        if bool(client_secret) == bool(certificate_pem):
            raise ValueError("give exactly one of client_secret and certificate_pem")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self.tenant_id = tenant_id.strip()
        self.client_id = client_id.strip()
        self.authority_host, plain_http_netloc = self._parse_authority_host(authority_host)
        self._credential: str | dict[str, str] = (
            client_secret
            if client_secret
            else _certificate_credential(certificate_pem or "", certificate_thumbprint)
        )
        self._http_client = MsalHttpClient(
            timeout_seconds, plain_http_netloc=plain_http_netloc, session=session
        )
        self._msal_authority = f"https://{urlsplit(self.authority_host).netloc}/{self.tenant_id}"
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_lock = threading.Lock()
        self._cache = _ScopedTokenCache(self._acquire, clock or SystemClock(), refresh_margin_seconds)

    @staticmethod
    def _parse_authority_host(authority_host: str) -> tuple[str, str | None]:
        value = authority_host.strip().rstrip("/")
        if "://" not in value:
            value = f"https://{value}"
        parts = urlsplit(value)
        if not parts.hostname or parts.path or parts.query:
            raise ValueError(f"authority_host must be a scheme and host only, got {authority_host!r}")
        if parts.scheme == "https":
            return value, None
        if parts.scheme == "http" and _is_loopback(parts.hostname):
            return value, parts.netloc
        raise ValueError(
            f"authority_host must be https (plain http only on a loopback address), got {authority_host!r}"
        )

    def __repr__(self) -> str:
        return (
            f"MsalTokenProvider(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"authority_host={self.authority_host!r})"
        )

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._app_lock:
            if self._app is None:
                import msal

                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=self._credential,
                        authority=self._msal_authority,
                        http_client=self._http_client,
                        # No call to login.microsoftonline.com/common/discovery/instance: only
                        # authority_host is ever contacted.
                        instance_discovery=False,
                        # No regional token service and no IMDS probe for one.
                        azure_region=False,
                        token_cache=msal.TokenCache(),
                    )
                except (ValueError, KeyError, requests.RequestException) as exc:
                    # ValueError: discovery answered an error; KeyError: its document lacks an endpoint.
                    raise AuthError(
                        f"could not set up the token client for {self.authority_host}/{self.tenant_id}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
            return self._app

    def _acquire(self, scope: str) -> tuple[str, float]:
        app = self._application()
        cache = app.token_cache
        for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN, target=[scope])):
            cache.remove_at(entry)
        try:
            result: Mapping[str, Any] | None = app.acquire_token_for_client(scopes=[scope])
        except (ValueError, requests.RequestException) as exc:
            raise AuthError(
                f"token request to {self.authority_host} for {scope} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not result or "access_token" not in result:
            result = result or {}
            error = str(result.get("error") or "unknown_error")
            description = str(result.get("error_description") or "no description")
            correlation_id = result.get("correlation_id")
            raise AuthError(
                f"token request to {self.authority_host} for {scope} failed: {error}: {description}",
                error=error,
                error_description=description,
                correlation_id=str(correlation_id) if correlation_id else None,
            )
        lifetime = float(result.get("expires_in") or 0)
        logger.info(
            "token acquired for %s from %s (expires in %ss)", scope, self.authority_host, int(lifetime)
        )
        return str(result["access_token"]), lifetime

    def get_token(self, scope: str) -> str:
        _require_scope(scope)
        return self._cache.get(scope)

    def invalidate(self, scope: str, token: str | None = None) -> None:
        self._cache.invalidate(scope, token)

    def close(self) -> None:
        self._http_client.close()


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
        self._cache = _ScopedTokenCache(self._acquire, self._clock, refresh_margin_seconds)

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
        _require_scope(scope)
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
        _require_scope(scope)
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
