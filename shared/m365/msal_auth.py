"""Client-credential tokens through msal (client secret or certificate), over an httpx client.

msal takes any `http_client` with requests-like `get`/`post` methods returning an object with
`status_code`, `text`, `headers` and `raise_for_status` (msal.oauth2cli.http.HttpClient documents that
shape). MsalHttpClient is that adapter over an `httpx.Client`, with a timeout on every call; msal's own
default (a requests.Session) is never built.

Secrets (client secret, private key, tokens) never appear in an exception message, a log line or a
repr.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from shared.m365.http_transport import new_http_client
from shared.m365.token_cache import (
    DEFAULT_REFRESH_MARGIN_SECONDS,
    AuthError,
    ScopedTokenCache,
    require_scope,
)
from shared.platform.clock import Clock, SystemClock

if TYPE_CHECKING:
    import msal

logger = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _RewrittenResponse:
    """The msal Response shape (status_code, text, headers, raise_for_status) over an httpx.Response."""

    def __init__(self, response: httpx.Response, text: str) -> None:
        self._response = response
        self.status_code = response.status_code
        self.text = text
        self.headers = response.headers

    def raise_for_status(self) -> None:
        self._response.raise_for_status()


MsalResponse = httpx.Response | _RewrittenResponse


def _without_none(values: Any) -> Any:
    """A mapping without its None values, and bytes values as text, as requests encoded them (httpx
    would send None as "" and bytes as "b'...'"; msal's client assertion is bytes)."""
    if isinstance(values, Mapping):
        return {
            key: value.decode("utf-8") if isinstance(value, bytes) else value
            for key, value in values.items()
            if value is not None
        }
    return values


class MsalHttpClient:
    """The http_client given to msal: an `httpx.Client` with a timeout on every call.

    msal passes requests-style keywords: `params` and `headers` mappings, `data` as a form dict or a
    string sent as is, and sometimes `timeout`. Other keywords are not used by the client-credential
    flow and are ignored. Redirects are not followed: a token request carries the credential.

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
        http: httpx.Client | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._http = http or new_http_client(max_connections=10, max_keepalive=2, follow_redirects=False)
        self._plain_http_netloc = plain_http_netloc.lower() if plain_http_netloc else None

    def _outgoing(self, url: str) -> tuple[str, bool]:
        if self._plain_http_netloc:
            parts = urlsplit(url)
            if parts.scheme == "https" and parts.netloc.lower() == self._plain_http_netloc:
                return parts._replace(scheme="http").geturl(), True
        return url, False

    def _incoming(self, response: httpx.Response) -> MsalResponse:
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

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: Any = None,
        data: Any = None,
        timeout: float | None = None,
    ) -> MsalResponse:
        target, rewritten = self._outgoing(url)
        body: dict[str, Any] = {}
        if isinstance(data, str | bytes):
            body["content"] = data
        elif data is not None:
            body["data"] = _without_none(data)
        response = self._http.request(
            method,
            target,
            params=_without_none(params),
            headers=_without_none(headers),
            timeout=self._timeout if timeout is None else timeout,
            **body,
        )
        return self._incoming(response) if rewritten else response

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> MsalResponse:
        return self._request("GET", url, params=params, headers=headers, timeout=kwargs.get("timeout"))

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> MsalResponse:
        return self._request(
            "POST", url, params=params, data=data, headers=headers, timeout=kwargs.get("timeout")
        )

    def close(self) -> None:
        self._http.close()


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
        http: httpx.Client | None = None,
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
        self._http_client = MsalHttpClient(timeout_seconds, plain_http_netloc=plain_http_netloc, http=http)
        self._msal_authority = f"https://{urlsplit(self.authority_host).netloc}/{self.tenant_id}"
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_lock = threading.Lock()
        self._cache = ScopedTokenCache(self._acquire, clock or SystemClock(), refresh_margin_seconds)

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
                except (ValueError, KeyError, httpx.HTTPError, httpx.InvalidURL) as exc:
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
        except (ValueError, httpx.HTTPError, httpx.InvalidURL) as exc:
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
        require_scope(scope)
        return self._cache.get(scope)

    def invalidate(self, scope: str, token: str | None = None) -> None:
        self._cache.invalidate(scope, token)

    def close(self) -> None:
        self._http_client.close()
