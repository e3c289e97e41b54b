"""The central HTTP client against a real local HTTP server (and a mock transport for broken connections)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import structlog

from src.core.config import HttpClientSettings, HttpServiceSettings
from src.core.http_client import HttpClient, UnknownServiceError


class Downstream(ThreadingHTTPServer):
    """Answers each request with the next scripted status (then 200), recording what it received."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[int] = []
        self.seen: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Downstream

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        status = self.server.script.pop(0) if self.server.script else 200
        payload = b'{"ok": true}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


@pytest.fixture
def downstream() -> Iterator[Downstream]:
    server = Downstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def settings_for(url: str, **overrides: Any) -> HttpClientSettings:
    values: dict[str, Any] = {
        "retries": 2,
        "retry_backoff": 0.001,
        "retry_backoff_max": 0.01,
        "services": {"billing": HttpServiceSettings(base_url=f"{url}/billing/", headers={"x-team": "payments"})},
    }
    return HttpClientSettings(**{**values, **overrides})


@pytest.fixture
async def http(downstream: Downstream) -> AsyncIterator[HttpClient]:
    client = HttpClient()
    await client.start(settings_for(downstream.url))
    yield client
    await client.close()


async def test_named_service_and_propagated_conversation_id(http: HttpClient, downstream: Downstream) -> None:
    structlog.contextvars.bind_contextvars(conversation_id="from-the-request-1")
    try:
        response = await http.get("billing", "/invoices/42", params={"full": "1"})
    finally:
        structlog.contextvars.clear_contextvars()
    assert response.json() == {"ok": True}
    [request] = downstream.seen
    assert request["path"] == "/billing/invoices/42?full=1"
    assert request["headers"]["x-conversation-id"] == "from-the-request-1"
    assert request["headers"]["x-team"] == "payments"


async def test_a_fresh_id_outside_a_request(http: HttpClient, downstream: Downstream) -> None:
    await http.request("GET", f"{downstream.url}/plain")
    await http.client.get(f"{downstream.url}/raw-client")  # the shared client adds it too
    ids = [request["headers"]["x-conversation-id"] for request in downstream.seen]
    assert len(ids) == 2
    assert all(len(value) == 36 for value in ids)


async def test_idempotent_calls_retry_on_503_then_succeed(http: HttpClient, downstream: Downstream) -> None:
    downstream.script = [503, 502]
    response = await http.get("billing", "/flaky")
    assert response.status_code == 200
    assert len(downstream.seen) == 3
    assert len({request["headers"]["x-conversation-id"] for request in downstream.seen}) == 1


async def test_retries_are_bounded_and_return_the_last_answer(http: HttpClient, downstream: Downstream) -> None:
    downstream.script = [504, 504, 504, 504]
    response = await http.get("billing", "/down")
    assert response.status_code == 504
    assert len(downstream.seen) == 3  # 1 + retries


async def test_post_is_never_repeated(http: HttpClient, downstream: Downstream) -> None:
    downstream.script = [503]
    response = await http.post("billing", "/charges", json={"amount": 5})
    assert response.status_code == 503
    assert len(downstream.seen) == 1
    assert downstream.seen[0]["body"] == b'{"amount":5}'


async def test_client_errors_are_not_retried(http: HttpClient, downstream: Downstream) -> None:
    downstream.script = [404]
    assert (await http.get("billing", "/missing")).status_code == 404
    assert len(downstream.seen) == 1


async def test_each_call_is_logged_without_query_or_secrets(http: HttpClient, downstream: Downstream) -> None:
    with structlog.testing.capture_logs() as logs:
        await http.get("billing", "/invoices/7", params={"token": "s3cret"}, headers={"authorization": "Bearer s3cret"})
    [line] = [line for line in logs if line["event"] == "http call"]
    assert line["service"] == "billing"
    assert line["method"] == "GET"
    assert line["path"] == "/billing/invoices/7"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert "s3cret" not in repr(logs)


async def test_connection_errors_are_retried_for_idempotent_methods() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"attempt": len(calls)})

    http = HttpClient()
    await http.start(settings_for("http://billing.invalid"), transport=httpx.MockTransport(handler))
    try:
        response = await http.put("billing", "/thing")
        assert response.json() == {"attempt": 3}
        calls.clear()
        with pytest.raises(httpx.ConnectError):
            await http.post("billing", "/thing")
        assert calls == ["POST"]
    finally:
        await http.close()


async def test_against_a_closed_port_the_error_surfaces_after_retries() -> None:
    http = HttpClient()
    await http.start(settings_for("http://127.0.0.1:9"))  # discard port: nothing listens
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(httpx.ConnectError):
            await http.get("billing", "/x")
    finally:
        await http.close()
    assert [line["event"] for line in logs].count("http call failed") == 3


async def test_unknown_service_names_the_configured_ones(http: HttpClient) -> None:
    with pytest.raises(UnknownServiceError, match="billing"):
        await http.get("shipping", "/x")


async def test_pool_limits_and_timeouts_come_from_config(downstream: Downstream) -> None:
    http = HttpClient()
    await http.start(settings_for(downstream.url, timeout=4.0, connect_timeout=1.5, max_connections=7))
    try:
        assert http.client.timeout.read == 4.0
        assert http.client.timeout.connect == 1.5
        pool = http.client._transport._pool  # type: ignore[attr-defined]
        assert pool._max_connections == 7
    finally:
        await http.close()
    with pytest.raises(RuntimeError, match="not started"):
        _ = http.client


async def test_the_app_lifespan_owns_one_client(settings: Any) -> None:
    from src.app import create_app
    from src.core.http_client import http_client

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        shared = http_client.client
        assert not shared.is_closed
    assert shared.is_closed
