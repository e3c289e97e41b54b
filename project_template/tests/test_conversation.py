from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import APIRouter, BackgroundTasks, FastAPI

from src.core.config import LoggingSettings, load_settings
from src.core.context import current_conversation_id, new_conversation_id
from src.core.logging import configure_logging, flush_access_log
from src.middleware.conversation import ConversationMiddleware

HEADER = "x-conversation-id"
AccessLines = Callable[[], list[dict[str, Any]]]
background_done = asyncio.Event()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests here reconfigure logging; put the test configuration back afterwards."""
    yield
    configure_logging(load_settings().logging, environment="test")


def build_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(ConversationMiddleware)
    log = structlog.get_logger("test")
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        log.info("handling", item_id=item_id)
        logging.getLogger("sqlalchemy.engine").warning("a standard-library line")
        return {"id": item_id}

    async def in_background(label: str) -> None:
        log.info("background", label=label, seen=current_conversation_id())
        background_done.set()

    @router.post("/jobs")
    async def job(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(in_background, "background-task")
        _tasks.add(asyncio.create_task(in_background("created-task")))
        return {"queued": "yes"}

    @router.get("/sync")
    def sync_route() -> dict[str, str]:  # runs in a worker thread
        log.info("in a thread", seen=current_conversation_id())
        return {"ok": "yes"}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    app.include_router(router, prefix="/api/v1/shop")
    return app


_tasks: set[asyncio.Task[None]] = set()


async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)


async def get(path: str, **kwargs: Any) -> httpx.Response:
    return await call("GET", path, **kwargs)


async def test_header_is_reused_and_echoed() -> None:
    response = await get("/api/v1/shop/items/1", headers={HEADER: "abc-123-def-456"})
    assert response.headers[HEADER] == "abc-123-def-456"


async def test_cookie_is_used_when_no_header() -> None:
    response = await get("/api/v1/shop/items/1", headers={"cookie": "theme=dark; conversation_id=cookie-id-0001"})
    assert response.headers[HEADER] == "cookie-id-0001"


async def test_new_uuid4_when_absent() -> None:
    first = await get("/api/v1/shop/items/1")
    second = await get("/api/v1/shop/items/1")
    assert uuid.UUID(first.headers[HEADER]).version == 4
    assert str(uuid.UUID(first.headers[HEADER])) == first.headers[HEADER]
    assert first.headers[HEADER] != second.headers[HEADER]


@pytest.mark.parametrize(
    "bad",
    ["short", "has space in it", "x" * 500, "<script>alert(1)</script>", "new\\nline-injected"],
)
async def test_invalid_or_oversized_value_is_replaced(bad: str) -> None:
    response = await get("/api/v1/shop/items/1", headers={HEADER: bad})
    assert response.headers[HEADER] != bad
    assert uuid.UUID(response.headers[HEADER]).version == 4


async def test_malformed_cookie_does_not_fail_request() -> None:
    response = await get("/api/v1/shop/items/1", headers={"cookie": 'conversation_id="unterminated; ;;=='})
    assert response.status_code == 200
    assert uuid.UUID(response.headers[HEADER])


async def test_every_log_line_carries_the_id(access_lines: AccessLines) -> None:
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = await get("/api/v1/shop/items/7", headers={HEADER: "trace-me-please"})
    assert response.status_code == 200
    assert [line["event"] for line in logs] == ["handling"]
    assert logs[0]["conversation_id"] == "trace-me-please"
    assert [line["conversation_id"] for line in access_lines()] == ["trace-me-please"]


async def test_one_access_line_with_route_template_and_module(access_lines: AccessLines) -> None:
    await get("/api/v1/shop/items/7?token=s3cret", headers={"authorization": "Bearer s3cret", "cookie": "sid=s3cret"})
    [line] = access_lines()
    assert line["event"] == "request"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/shop/items/{item_id}"
    assert line["path"] == "/api/v1/shop/items/7"
    assert line["status"] == 200
    assert line["module"] == "shop"
    assert re.fullmatch(r"\d+(\.\d+)?", str(line["duration_ms"]))
    assert "s3cret" not in json.dumps(line)


async def test_unmatched_route_is_labelled(access_lines: AccessLines) -> None:
    response = await get("/nowhere/42")
    assert response.status_code == 404
    assert [(line["route"], line["status"]) for line in access_lines()] == [("<unmatched>", 404)]


async def test_plain_starlette_routes_get_their_path(access_lines: AccessLines) -> None:
    response = await get("/docs")  # FastAPI's /docs, /redoc and /openapi.json are plain Starlette routes
    assert response.status_code == 200
    assert [(line["route"], line["module"]) for line in access_lines()] == [("/docs", "core")]


async def test_unhandled_error_is_a_500_access_line(access_lines: AccessLines) -> None:
    response = await get("/api/v1/shop/boom", headers={HEADER: "failing-request"})
    assert response.status_code == 500
    assert response.headers[HEADER] == "failing-request"
    assert response.json() == {"detail": "internal error", "conversation_id": "failing-request"}
    assert [(line["route"], line["status"]) for line in access_lines()] == [("/api/v1/shop/boom", 500)]
    assert access_lines()[0]["conversation_id"] == "failing-request"
    assert current_conversation_id() is None, "answered inside the middleware: the ID is unbound afterwards"


async def test_background_work_carries_the_id(access_lines: AccessLines) -> None:
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        background_done.clear()
        await call("POST", "/api/v1/shop/jobs", headers={HEADER: "queued-by-request"})
        await asyncio.wait_for(asyncio.gather(*_tasks), timeout=5)
    lines = {line["label"]: line for line in logs if line["event"] == "background"}
    assert set(lines) == {"background-task", "created-task"}
    for line in lines.values():
        assert line["conversation_id"] == "queued-by-request"
        assert line["seen"] == "queued-by-request"


async def test_stdlib_lines_carry_the_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(format="json"), environment="development")
    response = await get("/api/v1/shop/items/3", headers={HEADER: "stdlib-too-please"})
    flush_access_log()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    by_event = {line["event"]: line for line in lines}
    assert response.status_code == 200
    assert by_event["a standard-library line"]["conversation_id"] == "stdlib-too-please"
    assert by_event["a standard-library line"]["logger"] == "sqlalchemy.engine"
    assert by_event["handling"]["conversation_id"] == "stdlib-too-please"
    assert by_event["request"]["conversation_id"] == "stdlib-too-please"
    assert by_event["request"]["logger"] == "access"


async def test_context_does_not_leak_between_requests() -> None:
    await get("/api/v1/shop/items/1", headers={HEADER: "first-request-id"})
    assert "conversation_id" not in structlog.contextvars.get_contextvars()
    assert current_conversation_id() is None


async def test_mounted_apps_and_proxy_root_path(access_lines: AccessLines) -> None:
    inner = FastAPI()

    @inner.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    outer = FastAPI()
    outer.add_middleware(ConversationMiddleware)
    outer.mount("/legacy", inner)
    transport = httpx.ASGITransport(app=outer, root_path="/behind-proxy")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/behind-proxy/legacy/things/5")
    assert response.status_code == 200
    assert [line["route"] for line in access_lines()] == ["/legacy/things/{thing_id}"]


async def test_sync_routes_in_threads_carry_the_id() -> None:
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await get("/api/v1/shop/sync", headers={HEADER: "threaded-request"})
    [line] = [line for line in logs if line["event"] == "in a thread"]
    assert line["conversation_id"] == line["seen"] == "threaded-request"


def test_generated_ids_are_uuid4_and_do_not_repeat() -> None:
    ids = {new_conversation_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value for value in list(ids)[:100])
    random.seed(1)  # another library seeding the global generator changes nothing here
    first = new_conversation_id()
    random.seed(1)
    assert new_conversation_id() != first
