"""Bearer-token authentication, as one pure ASGI middleware.

For every HTTP request outside the public paths that carries
`Authorization: Bearer <token>`, the backend validates the token and the
outcome goes into `request.state`: `current_user` (a `Principal`, or None)
and `auth_error` (why a token was refused). The middleware never rejects a
request itself: routes decide with `CurrentUser` / `requires_role(...)`, so a
public endpoint still answers anonymous callers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from src.core.logging import get_logger
from src.core.security.principal import AuthBackend, AuthError, InvalidTokenError, Principal

PUBLIC_EXACT = frozenset({"/", "/metrics", "/openapi.json", "/docs/oauth2-redirect"})
PUBLIC_PREFIXES = ("/health", "/docs", "/redoc")
# Keycloak tokens with many roles reach 4-6 kB; anything far larger is not worth parsing.
MAX_TOKEN_BYTES = 16 * 1024

log = get_logger(__name__)


def is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)


def bearer_token(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The raw credentials of the first `Authorization: Bearer` header, or None."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() != b"bearer":
                return None
            return credentials.strip()
    return None


class AuthMiddleware:
    def __init__(self, app: ASGIApp, *, backend: AuthBackend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["current_user"] = None
        state["auth_error"] = None
        if not is_public(scope["path"]):
            raw = bearer_token(scope["headers"])
            if raw is not None:
                try:
                    state["current_user"] = await self.authenticate(raw)
                except AuthError as exc:
                    state["auth_error"] = exc
                    log.info("token refused", reason=str(exc), error=type(exc).__name__)
        await self.app(scope, receive, send)

    async def authenticate(self, raw: bytes) -> Principal:
        if not raw:
            raise InvalidTokenError("empty bearer token")
        if len(raw) > MAX_TOKEN_BYTES:
            raise InvalidTokenError("bearer token too large")
        try:
            token = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidTokenError("bearer token is not ASCII") from None
        return await self.backend.authenticate(token)
