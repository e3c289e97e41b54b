"""The realm's signing keys (JWKS), fetched with httpx and cached.

A token signed by a key the cache does not know (Keycloak rotated its keys)
triggers one refetch, serialised by a lock and limited by a cooldown, so a
flood of made-up key ids cannot hammer Keycloak. PyJWT's own `PyJWKClient`
fetches with blocking urllib and waits out a 30 s cooldown after a rotation,
hence this class.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from src.core.logging import get_logger
from src.core.security.identity import AuthUnavailableError, InvalidTokenError

log = get_logger(__name__)

# A failed fetch while no key is known is retried at most this often: a down
# Keycloak costs one connection attempt per second, not one per request.
FAILURE_BACKOFF = 1.0


class JwksCache:
    """The realm's signing keys by `kid`, refreshed on expiry and on an unknown `kid`."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float,
        cooldown: float,
        timeout: float,
        client: httpx.AsyncClient | None = None,
        on_refresh: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self.on_refresh = on_refresh  # called after every successful fetch (the keys may have changed)
        self.ttl = ttl
        self.cooldown = cooldown
        self.timeout = timeout
        self.client = client
        self.fetches = 0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._expires = 0.0
        self._last_unknown_refetch = -float("inf")
        self._last_failure = -float("inf")
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    async def get(self, kid: str) -> jwt.PyJWK:
        """The key `kid`; `InvalidTokenError` if the realm lacks it, `AuthUnavailableError` if unreachable."""
        key = self._keys.get(kid)
        if key is not None and time.monotonic() < self._expires:
            return key
        async with self._lock:
            # Another request may have refreshed while this one waited for the lock.
            key = self._keys.get(kid)
            now = time.monotonic()
            if key is not None and now < self._expires:
                return key
            if key is None and self.loaded and now < self._expires:
                if now - self._last_unknown_refetch < self.cooldown:
                    raise InvalidTokenError("token signed by an unknown key")
                self._last_unknown_refetch = now
            await self._refresh(now)
        key = self._keys.get(kid)
        if key is None:
            raise InvalidTokenError("token signed by an unknown key")
        return key

    async def refresh(self) -> None:
        """Fetch the keys unless they are fresh (start-up warm-up); raises `AuthUnavailableError` on failure."""
        async with self._lock:
            now = time.monotonic()
            if not (self.loaded and now < self._expires):
                await self._refresh(now)

    async def _refresh(self, now: float) -> None:
        if not self.loaded and now - self._last_failure < FAILURE_BACKOFF:
            raise AuthUnavailableError("authentication unavailable: cannot fetch Keycloak signing keys")
        try:
            self._keys = await self._fetch()
        except AuthUnavailableError:
            self._last_failure = time.monotonic()
            if not self.loaded:
                raise
            # Keep serving the keys we have: Keycloak being briefly down must not log everyone out.
            self._expires = time.monotonic() + min(self.ttl, 30.0)
            return
        self._expires = time.monotonic() + self.ttl
        if self.on_refresh is not None:
            self.on_refresh()

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        self.fetches += 1
        client = self.client or httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await client.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks fetch failed", url=self.url, error=f"{type(exc).__name__}: {exc}")
            raise AuthUnavailableError("authentication unavailable: cannot fetch Keycloak signing keys") from exc
        finally:
            if client is not self.client:
                await client.aclose()
        keys = parse_jwks(document)
        if not keys:
            log.warning("jwks has no usable signing key", url=self.url)
            raise AuthUnavailableError("authentication unavailable: Keycloak published no usable signing key")
        log.info("jwks fetched", url=self.url, kids=sorted(keys))
        return keys


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """Signing keys with a `kid`; encryption keys and keys PyJWT cannot use are skipped."""
    keys: dict[str, jwt.PyJWK] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
    return keys
