"""The authorization API modules use, identical in both auth modes: 401, 403, and every dependency form."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, WebSocket
from starlette.types import Message

from src.app import create_app
from src.core.config import Settings
from src.core.security import CurrentUser, OptionalUser, Principal, install_auth, requires_permission, requires_role
from tests.auth_helpers import auth_headers

router = APIRouter(prefix="/api/v1/shop")
AdminUser = Annotated[Principal, Depends(requires_role("admin"))]


@router.get("/items")
async def list_items(user: OptionalUser) -> dict[str, Any]:
    return {"viewer": user.username if user else None}


@router.post("/items", status_code=201)
async def create_item(body: dict[str, str], user: CurrentUser) -> dict[str, Any]:
    return {"created": body, "by": user.username}


@router.delete("/items/{item_id}", status_code=204, dependencies=[Depends(requires_role("admin", "owner"))])
async def delete_item(item_id: int) -> None:
    return None


@router.put("/items/{item_id}")
def replace_item(item_id: int, body: dict[str, str], user: AdminUser) -> dict[str, Any]:
    return {"id": item_id, "body": body, "by": user.username}


@router.patch("/items/{item_id}", dependencies=[Depends(requires_permission("items:write", "items:audit"))])
async def patch_item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


@router.get("/admin")
async def admin_only(user: AdminUser) -> dict[str, str]:
    return {"admin": user.username}


@router.websocket("/live")
async def live_feed(websocket: WebSocket, user: AdminUser) -> None:
    await websocket.accept()
    await websocket.send_json({"hello": user.username})
    await websocket.close()


@pytest.fixture
async def shop_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = FastAPI()
    backend = install_auth(app, settings)
    app.include_router(router)
    await backend.start()
    try:
        yield app
    finally:
        await backend.close()


@pytest.fixture
async def shop(shop_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop_app), base_url="http://test") as client:
        yield client


async def websocket_handshake(app: FastAPI, path: str, headers: dict[str, str]) -> list[Message]:
    """What the app sends a server for one WebSocket connection (httpx speaks no WebSocket)."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
        "subprotocols": [],
        # A refusal can then be a plain HTTP answer (401, 403) instead of a bare close.
        "extensions": {"websocket.http.response": {}},
    }
    inbox: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_anonymous_reads_and_signed_in_reads(shop: httpx.AsyncClient) -> None:
    assert (await shop.get("/api/v1/shop/items")).json() == {"viewer": None}
    response = await shop.get("/api/v1/shop/items", headers=auth_headers(username="erin"))
    assert response.json() == {"viewer": "erin"}
    broken = await shop.get("/api/v1/shop/items", headers={"Authorization": "Bearer nope"})
    assert broken.status_code == 401, "a bad token is refused even where anonymous calls are allowed"
    assert broken.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


async def test_write_needs_a_signed_in_user(shop: httpx.AsyncClient) -> None:
    anonymous = await shop.post("/api/v1/shop/items", json={"name": "lamp"})
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    signed_in = await shop.post("/api/v1/shop/items", json={"name": "lamp"}, headers=auth_headers(username="erin"))
    assert signed_in.status_code == 201
    assert signed_in.json() == {"created": {"name": "lamp"}, "by": "erin"}


@pytest.mark.parametrize(("roles", "status"), [((), 403), (("viewer",), 403), (("owner",), 204), (("admin",), 204)])
async def test_any_of_the_roles(shop: httpx.AsyncClient, roles: tuple[str, ...], status: int) -> None:
    response = await shop.delete("/api/v1/shop/items/3", headers=auth_headers(roles=roles))
    assert response.status_code == status
    if status == 403:
        assert "admin or owner" in response.json()["detail"]
    assert (await shop.delete("/api/v1/shop/items/3")).status_code == 401


async def test_a_sync_endpoint_keeps_path_body_and_user(shop: httpx.AsyncClient) -> None:
    response = await shop.put("/api/v1/shop/items/9", json={"name": "desk"}, headers=auth_headers(roles=["admin"]))
    assert response.json() == {"id": 9, "body": {"name": "desk"}, "by": "alice"}
    assert (await shop.put("/api/v1/shop/items/9", json={}, headers=auth_headers())).status_code == 403


async def test_permissions_are_all_required(shop: httpx.AsyncClient) -> None:
    one = await shop.patch("/api/v1/shop/items/1", headers=auth_headers(permissions=["items:write"]))
    assert one.status_code == 403
    assert "items:audit" in one.json()["detail"]
    both = await shop.patch("/api/v1/shop/items/1", headers=auth_headers(permissions=["items:write", "items:audit"]))
    assert both.status_code == 200


async def test_annotated_alias(shop: httpx.AsyncClient) -> None:
    assert (await shop.get("/api/v1/shop/admin", headers=auth_headers(roles=["admin"]))).json() == {"admin": "alice"}
    assert (await shop.get("/api/v1/shop/admin", headers=auth_headers())).status_code == 403


async def test_a_websocket_route_is_protected_the_same_way(shop_app: FastAPI) -> None:
    for headers, status in (({}, 401), ({"Authorization": "Bearer nope"}, 401), (auth_headers(), 403)):
        refused = await websocket_handshake(shop_app, "/api/v1/shop/live", headers)
        assert refused[0]["type"] == "websocket.http.response.start", refused
        assert refused[0]["status"] == status
        assert "websocket.accept" not in [message["type"] for message in refused]
    accepted = await websocket_handshake(shop_app, "/api/v1/shop/live", auth_headers(roles=["admin"]))
    assert [message["type"] for message in accepted] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert json.loads(accepted[1]["text"]) == {"hello": "alice"}


async def test_openapi_marks_protected_routes(shop: httpx.AsyncClient) -> None:
    schema = (await shop.get("/openapi.json")).json()
    assert "BearerAuth" in schema["components"]["securitySchemes"]
    paths = schema["paths"]
    assert {"BearerAuth": []} in paths["/api/v1/shop/items/{item_id}"]["delete"]["security"]
    assert {"BearerAuth": []} in paths["/api/v1/shop/items"]["post"]["security"]
    # Optional: /docs sends the token once authorized; anonymous calls work all the same.
    assert {"BearerAuth": []} in paths["/api/v1/shop/items"]["get"]["security"]
    assert "BearerAuthOptional" not in schema["components"]["securitySchemes"]
    parameters = paths["/api/v1/shop/items/{item_id}"]["delete"]["parameters"]
    assert [p["name"] for p in parameters] == ["item_id"], "a requirement adds no visible parameter"


async def test_public_paths_ignore_tokens(client: httpx.AsyncClient) -> None:
    garbage = {"Authorization": "Bearer garbage"}
    assert (await client.get("/", headers=garbage)).status_code == 200
    assert (await client.get("/openapi.json", headers=garbage)).status_code == 200
    assert (await client.get("/docs", headers=garbage)).status_code == 200


async def test_the_real_app_declares_its_security_scheme(settings: Settings) -> None:
    app = create_app(settings)  # a project without modules has no protected route yet: add one

    @app.get("/api/v1/probe/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"id": user.id}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        schema = (await client.get("/openapi.json")).json()
    assert "BearerAuth" in schema["components"]["securitySchemes"]
    assert {"BearerAuth": []} in schema["paths"]["/api/v1/probe/me"]["get"]["security"]


def test_a_requirement_names_something() -> None:
    with pytest.raises(ValueError, match="at least one"):
        requires_role()
    with pytest.raises(ValueError, match="at least one"):
        requires_permission()
