"""The central HTTP client: one pooled `httpx.AsyncClient` for the application's lifetime.

    from src.core.http_client import http_client

    response = await http_client.get("billing", "/invoices/42")   # a service named in config/*.yml
    response = await http_client.request("GET", "https://example.com/x")  # any absolute URL

Every outgoing request carries `X-Conversation-ID` (the current request's, or
a new one outside a request) and is logged with service, method, path, status
and duration. Idempotent methods are retried with exponential backoff and
jitter (stamina) on connection errors and on 502/503/504; other methods are
sent once. `start()` and `close()` run in the application's lifespan.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import stamina

from src.core.config import HttpClientSettings, HttpServiceSettings
from src.core.context import HEADER_NAME, current_conversation_id, new_conversation_id
from src.core.logging import get_logger

log = get_logger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_STATUSES = frozenset({502, 503, 504})
# Failures where the request cannot have been processed, or the connection broke:
# safe to repeat for an idempotent method.
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.PoolTimeout,
)


class UnknownServiceError(KeyError):
    """The service name is not configured under `http.services`."""


class _RetryableStatusError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


async def _add_conversation_id(request: httpx.Request) -> None:
    # Covers calls made on `http_client.client` directly; `request()` sets it itself.
    if HEADER_NAME not in request.headers:
        request.headers[HEADER_NAME] = current_conversation_id() or new_conversation_id()


class HttpClient:
    """Owns the shared `httpx.AsyncClient`; configured services are addressed by name."""

    def __init__(self) -> None:
        self.config = HttpClientSettings()
        self._client: httpx.AsyncClient | None = None

    async def start(self, config: HttpClientSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """Open the pool (the lifespan calls this; tests may pass a transport)."""
        await self.close()
        self.config = config
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_keepalive_connections,
            ),
            event_hooks={"request": [_add_conversation_id]},
            transport=transport,
            follow_redirects=False,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared client (X-Conversation-ID included), for calls this wrapper does not cover."""
        if self._client is None:
            raise RuntimeError("the HTTP client is not started: call `await http_client.start(...)` in the lifespan")
        return self._client

    def service(self, name: str) -> HttpServiceSettings:
        try:
            return self.config.services[name]
        except KeyError:
            known = ", ".join(sorted(self.config.services)) or "none"
            raise UnknownServiceError(f"unknown HTTP service {name!r} (configured: {known})") from None

    async def request(self, method: str, url: str, *, service: str | None = None, **kwargs: Any) -> httpx.Response:
        """Send a request (to `service`'s base URL when given), retrying idempotent ones; returns the last response."""
        method = method.upper()
        # Fixed here, not per attempt: retries of one call share one ID.
        headers = {HEADER_NAME: current_conversation_id() or new_conversation_id()}
        if service is not None:
            target = self.service(service)
            url = target.base_url.rstrip("/") + "/" + url.lstrip("/")
            headers.update(target.headers)
            if target.timeout is not None:
                kwargs.setdefault("timeout", target.timeout)
        merged = httpx.Headers(headers)
        merged.update(kwargs.get("headers") or {})  # the caller's values win, whatever their case
        kwargs["headers"] = merged
        if method not in IDEMPOTENT or self.config.retries == 0:
            return await self._send(method, url, service, **kwargs)
        try:
            async for attempt in stamina.retry_context(
                on=(*RETRY_ERRORS, _RetryableStatusError),
                attempts=self.config.retries + 1,
                timeout=None,
                wait_initial=self.config.retry_backoff,
                wait_max=self.config.retry_backoff_max,
                wait_jitter=self.config.retry_backoff,
            ):
                with attempt:
                    response = await self._send(method, url, service, **kwargs)
                    if response.status_code in RETRY_STATUSES:
                        raise _RetryableStatusError(response)
                    return response
        except _RetryableStatusError as exc:  # retries exhausted: the caller decides what a 503 means
            return exc.response
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    async def _send(self, method: str, url: str, service: str | None, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        path = httpx.URL(url).path
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            log.warning(
                "http call failed",
                service=service,
                method=method,
                path=path,
                error=type(exc).__name__,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            raise
        log.info(
            "http call",
            service=service,
            method=method,
            path=path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return response

    async def get(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, service=service, **kwargs)

    async def post(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, service=service, **kwargs)

    async def put(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, service=service, **kwargs)

    async def patch(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, service=service, **kwargs)

    async def delete(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, service=service, **kwargs)


http_client = HttpClient()
