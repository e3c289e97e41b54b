"""Failures a client sees: a database outage is a JSON 503, anything else a JSON 500; both carry the ID."""

from __future__ import annotations

import io
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url

from src.app import create_app
from src.core.config import Settings
from src.core.db import SessionDep
from src.core.errors import is_database_unavailable
from src.core.logging import AccessLog

HEADER = "x-conversation-id"
AccessLines = Callable[[], list[dict[str, Any]]]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def serving(settings: Settings, *, raise_app_exceptions: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    add_probe_routes(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def add_probe_routes(app: FastAPI) -> None:
    @app.get("/api/v1/probe/db")
    async def uses_database(session: SessionDep) -> dict[str, int]:
        return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}

    @app.get("/api/v1/probe/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    @app.get("/api/v1/probe/os-error")
    async def os_error() -> None:
        raise FileNotFoundError("/etc/app/missing.pem")  # an OSError, but no database outage

    @app.get("/api/v1/probe/integrity")
    async def integrity() -> None:
        raise sa_exc.IntegrityError("INSERT ...", {}, Exception("duplicate key"))

    @app.get("/api/v1/probe/teapot")
    async def teapot() -> None:
        raise HTTPException(418, detail="short and stout")

    @app.get("/api/v1/probe/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first chunk"
            raise RuntimeError("failed mid-stream")

        return StreamingResponse(chunks())


def capture() -> AbstractContextManager[list[MutableMapping[str, Any]]]:
    return structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars])


def access_line(access_lines: AccessLines) -> dict[str, Any]:
    """The request's access line, reduced to what these tests look at."""
    (line,) = access_lines()
    return {key: line[key] for key in ("status", "conversation_id", "level")}


def with_database(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})


async def test_database_outage_is_a_json_503_with_the_id(settings: Settings, access_lines: AccessLines) -> None:
    down = with_database(settings, f"postgresql+asyncpg://app@127.0.0.1:{closed_port()}/app")
    async with serving(down) as client:
        with capture() as logs:  # after create_app, which configures logging
            response = await client.get("/api/v1/probe/db", headers={HEADER: "my-trace-123"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "database unavailable"}
    assert int(response.headers["retry-after"]) > 0
    assert response.headers[HEADER] == "my-trace-123"
    warning = next(line for line in logs if line["event"] == "database unavailable")
    assert warning["conversation_id"] == "my-trace-123"
    assert warning["log_level"] == "warning"
    assert access_line(access_lines) == {"status": 503, "conversation_id": "my-trace-123", "level": "error"}


@pytest.mark.parametrize("debug", [False, True])
async def test_unhandled_error_is_a_json_500_without_traceback(
    settings: Settings, debug: bool, access_lines: AccessLines
) -> None:
    async with serving(settings.model_copy(update={"debug": debug})) as client:
        with capture() as logs:
            response = await client.get("/api/v1/probe/boom", headers={HEADER: "failing-request-1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error", "conversation_id": "failing-request-1"}
    assert response.headers[HEADER] == "failing-request-1"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    logged = next(line for line in logs if line["event"] == "unhandled error")
    assert logged["conversation_id"] == "failing-request-1"
    assert logged["log_level"] == "error"
    assert logged["exc_info"] is True  # the traceback goes to the log
    assert access_line(access_lines) == {"status": 500, "conversation_id": "failing-request-1", "level": "error"}
    assert "conversation_id" not in structlog.contextvars.get_contextvars(), "the ID must not leak past the request"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/probe/os-error", 500), ("/api/v1/probe/integrity", 500), ("/api/v1/probe/teapot", 418)],
)
async def test_other_errors_are_not_reported_as_an_outage(settings: Settings, path: str, status: int) -> None:
    async with serving(settings) as client:
        response = await client.get(path)
    assert response.status_code == status
    assert response.headers[HEADER]
    assert response.json()["detail"] != "database unavailable"


async def test_error_after_the_response_started_aborts_it(settings: Settings) -> None:
    async with serving(settings, raise_app_exceptions=False) as client:
        response = await client.get("/api/v1/probe/stream")
    assert response.status_code == 200  # the status line was sent; the server cuts the body short
    assert response.text == "first chunk"
    structlog.contextvars.clear_contextvars()


def invalidated() -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", {}, Exception("connection reset"), connection_invalidated=True)


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"), True),
        (sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
        (sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")), True),
        (invalidated(), True),
        (sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (sa_exc.DBAPIError("SELECT 1", {}, Exception("syntax error")), False),
        (ConnectionRefusedError(111, "refused"), False),  # not raised by a database driver
        (ValueError("bad"), False),
    ],
)
def test_which_errors_mean_the_database_is_unavailable(error: Exception, outage: bool) -> None:
    assert is_database_unavailable(error) is outage


def test_buffered_json_access_line_of_a_5xx_is_an_error() -> None:
    stream = io.StringIO()
    sink = AccessLog(stream)
    sink({"event": "request", "status": 200})
    sink({"event": "request", "status": 503})
    sink.flush()
    assert [json.loads(line)["level"] for line in stream.getvalue().splitlines()] == ["info", "error"]


@pytest.mark.postgres
@pytest.mark.parametrize("part", ["database", "username"])
async def test_a_server_refusing_the_connection_is_a_503(settings: Settings, part: str) -> None:
    """PostgreSQL answers but refuses us (an unknown database or role, as with a wrong password): an outage."""
    configured = make_url(os.environ["DATABASE_URL"])
    unknown = f"no_such_{part}_{uuid.uuid4().hex[:8]}"
    wrong = configured.set(database=unknown) if part == "database" else configured.set(username=unknown)
    refused = wrong.render_as_string(hide_password=False)
    async with serving(with_database(settings, refused)) as client:
        response = await client.get("/api/v1/probe/db")
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}
