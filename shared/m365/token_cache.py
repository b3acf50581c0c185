"""What every token provider shares: AuthError, the provider protocols, and the per-scope token cache.

The cache keeps one token per scope in the process and asks for a new one `refresh_margin` (5
minutes, or half the lifetime of a short-lived token) before the token expires, timed by the injected
Clock. Concurrent callers for one scope wait for a single token request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shared.platform.clock import Clock
from shared.platform.redact import redact

DEFAULT_REFRESH_MARGIN_SECONDS = 300.0


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


class ScopedTokenCache:
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


def require_scope(scope: str) -> None:
    if not scope or not scope.strip():
        raise ValueError("scope must be a non-empty string")
