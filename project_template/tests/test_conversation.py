from __future__ import annotations

import re
import uuid

import httpx
import pytest
import structlog
from fastapi import APIRouter, FastAPI

from src.middleware.conversation import ConversationMiddleware

HEADER = "x-conversation-id"


def build_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(ConversationMiddleware)
    log = structlog.get_logger("test")
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        log.info("handling", item_id=item_id)
        return {"id": item_id}

    app.include_router(router, prefix="/api/v1/shop")
    return app


async def get(path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, **kwargs)  # type: ignore[arg-type]


async def test_header_is_reused_and_echoed() -> None:
    response = await get("/api/v1/shop/items/1", headers={HEADER: "abc-123-def-456"})
    assert response.headers[HEADER] == "abc-123-def-456"


async def test_cookie_is_used_when_no_header() -> None:
    response = await get("/api/v1/shop/items/1", headers={"cookie": "theme=dark; conversation_id=cookie-id-0001"})
    assert response.headers[HEADER] == "cookie-id-0001"


async def test_new_uuid4_when_absent() -> None:
    response = await get("/api/v1/shop/items/1")
    assert uuid.UUID(response.headers[HEADER]).version == 4


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


async def test_every_log_line_carries_the_id_and_one_access_line() -> None:
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = await get("/api/v1/shop/items/7", headers={HEADER: "trace-me-please"})
    assert response.status_code == 200
    assert logs, "nothing was logged"
    assert all(line.get("conversation_id") == "trace-me-please" for line in logs)
    access = [line for line in logs if line["event"] == "request"]
    assert len(access) == 1
    assert access[0]["method"] == "GET"
    assert access[0]["route"] == "/api/v1/shop/items/{item_id}"
    assert access[0]["status"] == 200
    assert re.fullmatch(r"\d+(\.\d+)?", str(access[0]["duration_ms"]))


async def test_unmatched_route_is_labelled() -> None:
    with structlog.testing.capture_logs() as logs:
        response = await get("/nowhere")
    assert response.status_code == 404
    assert [line["route"] for line in logs if line["event"] == "request"] == ["<unmatched>"]


async def test_context_does_not_leak_between_requests() -> None:
    await get("/api/v1/shop/items/1", headers={HEADER: "first-request-id"})
    assert "conversation_id" not in structlog.contextvars.get_contextvars()
