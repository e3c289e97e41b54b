"""The authorization API modules use, identical in both auth modes: 401, 403, decorator and dependency forms."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from src.core.config import PROJECT_ROOT, Settings
from src.core.security import CurrentUser, OptionalUser, Principal, requires_permission, requires_role
from src.core.security.setup import install_auth
from tests.auth_helpers import auth_headers

router = APIRouter(prefix="/api/v1/shop")
AdminUser = Annotated[Principal, Depends(requires_role("admin"))]


@router.get("/items")
async def list_items(user: OptionalUser) -> dict[str, Any]:
    return {"viewer": user.username if user else None}


@router.post("/items", status_code=201)
async def create_item(body: dict[str, str], user: CurrentUser) -> dict[str, Any]:
    return {"created": body, "by": user.username}


@router.delete("/items/{item_id}", status_code=204)
@requires_role("admin", "owner")
async def delete_item(item_id: int) -> None:
    return None


@router.put("/items/{item_id}")
@requires_role("admin")
def replace_item(item_id: int, body: dict[str, str], user: CurrentUser) -> dict[str, Any]:
    return {"id": item_id, "body": body, "by": user.username}


@router.patch("/items/{item_id}", dependencies=[Depends(requires_permission("items:write", "items:audit"))])
async def patch_item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


@router.get("/admin")
async def admin_only(user: AdminUser) -> dict[str, str]:
    return {"admin": user.username}


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    backend = install_auth(app, settings)
    app.include_router(router)
    await backend.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client
    finally:
        await backend.close()


async def test_anonymous_reads_and_signed_in_reads(shop: httpx.AsyncClient) -> None:
    assert (await shop.get("/api/v1/shop/items")).json() == {"viewer": None}
    response = await shop.get("/api/v1/shop/items", headers=auth_headers(username="erin"))
    assert response.json() == {"viewer": "erin"}
    broken = await shop.get("/api/v1/shop/items", headers={"Authorization": "Bearer nope"})
    assert broken.status_code == 401, "a bad token is refused even where anonymous calls are allowed"


async def test_write_needs_a_signed_in_user(shop: httpx.AsyncClient) -> None:
    anonymous = await shop.post("/api/v1/shop/items", json={"name": "lamp"})
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    signed_in = await shop.post("/api/v1/shop/items", json={"name": "lamp"}, headers=auth_headers(username="erin"))
    assert signed_in.status_code == 201
    assert signed_in.json() == {"created": {"name": "lamp"}, "by": "erin"}


@pytest.mark.parametrize(("roles", "status"), [((), 403), (("viewer",), 403), (("owner",), 204), (("admin",), 204)])
async def test_decorator_any_of_the_roles(shop: httpx.AsyncClient, roles: tuple[str, ...], status: int) -> None:
    response = await shop.delete("/api/v1/shop/items/3", headers=auth_headers(roles=roles))
    assert response.status_code == status
    if status == 403:
        assert "admin or owner" in response.json()["detail"]
    assert (await shop.delete("/api/v1/shop/items/3")).status_code == 401


async def test_decorator_on_a_sync_endpoint_keeps_path_body_and_user(shop: httpx.AsyncClient) -> None:
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


async def test_openapi_marks_protected_routes_only(shop: httpx.AsyncClient) -> None:
    schema = (await shop.get("/openapi.json")).json()
    assert "BearerAuth" in schema["components"]["securitySchemes"]
    paths = schema["paths"]
    assert {"BearerAuth": []} in paths["/api/v1/shop/items/{item_id}"]["delete"]["security"]
    assert {"BearerAuth": []} in paths["/api/v1/shop/items"]["post"]["security"]
    assert paths["/api/v1/shop/items"]["get"]["security"][0] == {}, "anonymous allowed where the token is optional"
    assert "BearerAuthOptional" not in schema["components"]["securitySchemes"]
    parameters = paths["/api/v1/shop/items/{item_id}"]["delete"]["parameters"]
    assert [p["name"] for p in parameters] == ["item_id"], "the decorator adds no visible parameter"


async def test_public_paths_ignore_tokens(client: httpx.AsyncClient) -> None:
    garbage = {"Authorization": "Bearer garbage"}
    assert (await client.get("/", headers=garbage)).status_code == 200
    assert (await client.get("/openapi.json", headers=garbage)).status_code == 200
    assert (await client.get("/docs", headers=garbage)).status_code == 200


async def test_the_real_app_declares_its_security_scheme(client: httpx.AsyncClient, settings: Settings) -> None:
    scheme = (await client.get("/openapi.json")).json()["components"]["securitySchemes"]["BearerAuth"]
    if settings.auth.mode == "rbac":
        assert scheme["flows"]["password"]["tokenUrl"] == f"{settings.api_prefix}/auth/login"
    else:
        assert scheme["scheme"] == "bearer"


def test_a_requirement_names_something() -> None:
    with pytest.raises(ValueError, match="at least one"):
        requires_role()


ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route"}
AUTH_DECORATORS = {"requires_role", "requires_permission"}


def misplaced_requirements(source: str, filename: str) -> list[str]:
    """Functions where `@requires_*` sits above the route decorator: the route would be registered unprotected."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        names = []
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            names.append(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
        routes = [i for i, name in enumerate(names) if name in ROUTE_DECORATORS]
        checks = [i for i, name in enumerate(names) if name in AUTH_DECORATORS]
        if routes and checks and min(checks) < max(routes):
            found.append(f"{filename}:{node.lineno} {node.name}")
    return found


def test_requirement_decorators_sit_under_the_route_decorator() -> None:
    # Above it, the decorator would wrap a function the router has already registered: no check at all.
    misplaced = []
    for folder in ("modules", "src"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            misplaced += misplaced_requirements(path.read_text(encoding="utf-8"), str(path.relative_to(PROJECT_ROOT)))
    assert misplaced == [], "put @requires_role / @requires_permission UNDER @router.<method>(...)"


def test_the_decorator_order_check_catches_a_misplaced_requirement() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    assert misplaced_requirements(source, "ok.py") == []
    bad = "@requires_role('admin')\n@router.delete('/{i}')\nasync def remove(i: int) -> None: ...\n"
    assert misplaced_requirements(bad, "bad.py") == ["bad.py:3 remove"]
