"""Tokens already verified: a client sending the same bearer token again skips the signature check.

A token's signature and claims cannot change, so once verified it stays valid until
its `exp`, unless the key that signed it is withdrawn. Each backend keeps one cache
and clears it when its keys change (RBAC: a new secret; Keycloak: every JWKS
fetch). An entry never outlives its token: it is dropped at the token's `exp`,
without the clock leeway the full check allows. Entries are keyed by the token's
SHA-256, so the cache holds no usable token. Only successes are cached: a bad
token is checked in full every time. Measured: a hit costs about 2 us where a full
HS256 check costs about 100 us (RS256 more), see docs/performance.md.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from types import MappingProxyType

from src.core.security.identity import Principal

MAX_ENTRIES = 4096


class VerifiedTokens:
    """Principals of verified tokens, by token digest, until each token's expiry; at most `max_entries`."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[Principal, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Principal | None:
        """The principal of `token` if it was verified and has not expired since."""
        key = hashlib.sha256(token.encode()).digest()
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, expires = entry
        if time.time() >= expires:
            del self._entries[key]
            return None
        return principal

    def put(self, token: str, principal: Principal) -> Principal:
        """Remember a verified token until its `exp` claim (not at all without one); return the principal to use.

        Its claims become read-only: every request with this token shares them.
        """
        expires = principal.claims.get("exp")
        if not isinstance(expires, int | float) or time.time() >= expires:
            return principal
        if len(self._entries) >= self.max_entries:
            self._evict()
        shared = replace(principal, claims=MappingProxyType(dict(principal.claims)))
        self._entries[hashlib.sha256(token.encode()).digest()] = (shared, float(expires))
        return shared

    def clear(self) -> None:
        """Forget every token (the signing keys changed)."""
        self._entries.clear()

    def _evict(self) -> None:
        now = time.time()
        expired = [key for key, (_, expires) in self._entries.items() if now >= expires]
        for key in expired:
            del self._entries[key]
        # Still full: drop the oldest quarter (dicts keep insertion order), not one entry per request.
        if len(self._entries) >= self.max_entries:
            for key in list(self._entries)[: max(1, self.max_entries // 4)]:
                del self._entries[key]
