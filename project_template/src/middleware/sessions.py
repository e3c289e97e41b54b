"""Closes the database sessions a request used, after its response: the cleanup of `SessionDep`.

`SessionDep` is a plain dependency (no generator, no exit stack): it hands the route a
session that builds itself on first use, and records it here. A request that never
used it (a cache hit) pays for no session, no connection and no close; one whose
session began a transaction is closed here (rolled back if uncommitted, its connection
back to the pool), even when the route raised. Measured in
docs/performance.md: the generator dependency doing `async with sessionmaker()` cost
about as much as the whole token check.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from src.core.db import SESSIONS_KEY, RequestSession
from src.core.logging import get_logger

log = get_logger(__name__)


class SessionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sessions: list[RequestSession] = []
        scope[SESSIONS_KEY] = sessions
        try:
            await self.app(scope, receive, send)
        finally:
            for session in sessions:
                if session.started and session.in_transaction():
                    try:
                        await session.close()
                    except Exception as exc:  # the database went away: the request's own outcome stands
                        log.warning("closing a database session failed", error=f"{type(exc).__name__}: {exc}")
