"""Conversation ID, access line and HTTP metrics, in one pure ASGI middleware.

The ID comes from the `X-Conversation-ID` header or the `conversation_id`
cookie when it is well formed, else a new UUID4. It is echoed in the response
header and bound to structlog's context, so every log line of the request
(standard-library loggers and tasks it starts included) carries it. One access
line per request: method, route template, path, status, duration, module; no
headers, so no secrets. One class with a single `send` wrapper because every
middleware layer costs throughput (docs/observability.md).
"""

from __future__ import annotations

import re
import time
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.core import logging as app_logging
from src.core.context import CONTEXT_KEY, CONVERSATION_ID, COOKIE_NAME, HEADER_NAME, new_conversation_id
from src.core.errors import TracebackLimiter, answer_unhandled_error
from src.core.metrics import UNMATCHED, HttpMetrics, module_of

HEADER = HEADER_NAME.encode()
_COOKIE_BYTES = COOKIE_NAME.encode()
_VALID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
# Baseline browser protections on every answer, added with the ID at no extra pass over the
# headers: no MIME sniffing, no referrer leaked, never framed (old and new browsers).
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)


def _incoming_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    cookie_header = None
    for name, value in headers:
        if name == HEADER:
            return value.decode("ascii") if _VALID.fullmatch(value) else None
        if name == b"cookie":
            cookie_header = value
    if cookie_header is not None and _COOKIE_BYTES in cookie_header:
        try:
            morsel = SimpleCookie(cookie_header.decode("latin-1")).get(COOKIE_NAME)
        except Exception:  # a malformed Cookie header must not fail the request
            return None
        if morsel is not None and _VALID.fullmatch(morsel.value.encode("latin-1")):
            return morsel.value
    return None


def _plain_route_path(scope: Scope) -> str | None:
    """The template of a matched plain Starlette route (`/docs`, `/openapi.json`, `app.add_route`).

    They record only their endpoint in the scope, not themselves: find the route by it.
    Off the hot path: FastAPI's routes record themselves.
    """
    endpoint = scope.get("endpoint")
    if endpoint is None:
        return None
    for route in getattr(scope.get("router"), "routes", ()):
        if getattr(route, "endpoint", None) is endpoint:
            path_format: str | None = getattr(route, "path_format", None)
            return path_format
    return None


def route_template(scope: Scope, server_root_path: str = "") -> str:
    """The matched route's full path template (bounded cardinality), or `<unmatched>` (no route: a 404).

    A `Mount` adds its prefix to `root_path`; the server's own root path (`--root-path`
    behind a proxy), given as `server_root_path`, is not part of the template.
    """
    # FastAPI >= 0.165 includes routers lazily: `scope["route"]` is the router's own
    # route (no include prefix); the full template sits in the effective context.
    fastapi_scope = scope.get("fastapi")
    path_format: str | None = None
    if fastapi_scope:
        path_format = getattr(fastapi_scope.get("effective_route_context"), "path_format", None)
    if path_format is None:
        path_format = getattr(scope.get("route"), "path_format", None)
    if path_format is None:
        path_format = _plain_route_path(scope)
        if path_format is None:
            return UNMATCHED
    root_path: str | None = scope.get("root_path")
    if root_path and root_path != server_root_path:
        return root_path[len(server_root_path) :] + path_format
    return path_format


class ConversationMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log: bool = True,
        metrics: HttpMetrics | None = None,
        api_prefix: str = "/api/v1",
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics
        self.api_prefix = api_prefix
        self._modules: dict[str, str] = {}
        self._tracebacks = TracebackLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        server_root_path = scope.get("root_path", "")
        conversation_id = _incoming_id(scope["headers"]) or new_conversation_id()
        scope.setdefault("state", {})[CONTEXT_KEY] = conversation_id
        token = CONVERSATION_ID.set(conversation_id)
        echoed = conversation_id.encode("ascii")
        method = scope["method"]
        metrics = self.metrics
        if metrics is not None:
            metrics.started(method)
        status = 0  # no response started yet
        failed = True

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, echoed), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
            failed = False
        except Exception:
            if status:  # the response has started: too late for an error response, the server aborts it
                raise
            # Answered here, inside this middleware, so the 500 carries the ID; the traceback goes to the log.
            await answer_unhandled_error(
                send_wrapper,
                conversation_id,
                method=method,
                path=scope["path"],
                route=route_template(scope, server_root_path),
                tracebacks=self._tracebacks,
            )
            failed = False
        finally:
            duration = time.perf_counter() - started
            route = route_template(scope, server_root_path)
            status = status or 500
            if metrics is not None:
                metrics.finished(method, route, status, duration)
            if self.access_log:
                module = self._modules.get(route)
                if module is None:
                    module = self._modules[route] = module_of(route, self.api_prefix)
                app_logging.write_access_line(
                    {
                        "event": "request",
                        "conversation_id": conversation_id,
                        "method": method,
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": int(duration * 100_000) / 100,  # 2 decimals, cheaper than round()
                        "module": module,
                    }
                )
            # When the error escapes (the response had started) the ID stays bound: the server's
            # own "Exception in ASGI application" line, logged next in this request's task, carries it.
            if not failed:
                CONVERSATION_ID.reset(token)
