"""Who is calling: the principal every auth mode produces, and the errors a backend raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from src.core.security.tokens import VerifiedTokens


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; the same shape whether Keycloak or the app issued the token."""

    id: str
    username: str
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    email: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has_role(self, *roles: str) -> bool:
        """True when the principal holds at least one of `roles`."""
        return not self.roles.isdisjoint(roles)

    def has_permissions(self, *permissions: str) -> bool:
        """True when the principal holds every one of `permissions`."""
        return self.permissions.issuperset(permissions)


class AuthError(Exception):
    """Base of the errors a backend raises; the message is safe to show to the client."""


class InvalidTokenError(AuthError):
    """The token is malformed, forged, expired or not meant for this service (401)."""


class AuthUnavailableError(AuthError):
    """The token cannot be checked right now, e.g. the identity provider is unreachable (503)."""


class AuthBackend(Protocol):
    """Turns a bearer token into a `Principal`; one per app (`app.state.auth_backend`)."""

    tokens: VerifiedTokens  # tokens it verified, cleared when its keys change

    async def start(self) -> None:
        """Acquire resources (HTTP client, key warm-up); must not fail when the IdP is down."""

    async def close(self) -> None:
        """Release what `start` acquired."""

    async def authenticate(self, token: str) -> Principal:
        """Validate `token`; raise `InvalidTokenError` or `AuthUnavailableError`."""
        ...
