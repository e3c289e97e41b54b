"""What a user gets from /openapi.json and /docs: readable, unique names, and pages that work offline."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import render, run, uv

PAGES = """
import asyncio, json, re, sys
import httpx
from src.app import app

async def main():
    found = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        for page in ("/docs", "/redoc"):
            html = (await client.get(page)).text
            urls = re.findall(r"(?:src|href)=[\\"']([^\\"']+\\.(?:js|css|png))[\\"']", html)
            urls += re.findall(r"url: '([^']+\\.(?:js|css|png))'", html)
            found[page] = {u: (await client.get(u)).status_code if u.startswith("/") else None for u in urls}
    print(json.dumps(found))

asyncio.run(main())
"""


def openapi_of(root: Path) -> dict[str, Any]:
    script = "import json; from src.app import app; print(json.dumps(app.openapi()))"
    out = uv(root, "python", "-c", script, env={"CONFIG_ENV": "development", "DATABASE_URL": ""}).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_schema_and_operation_names_are_readable_and_unique(template: Path, tmp_path: Path) -> None:
    """users, auth and a third module each define `UserCreate`: three readable names, not dotted paths."""
    root = render(template, tmp_path / "my_api", auth="rbac", with_example_module=True)
    run(["uv", "sync", "--quiet"], root)
    uv(root, "python", "scripts/create_module.py", "--name", "members", "--model", "User")
    schema = openapi_of(root)
    names = set(schema["components"]["schemas"])
    assert [n for n in names if "__" in n or "api_v1" in n] == []
    for name in ("UserCreate", "UserRead", "UserUpdate"):
        assert {name, f"Auth{name}", f"Members{name}"} <= names
    assert set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(schema))) <= names  # every $ref resolves

    paths = schema["paths"].items()
    operations = [(op["operationId"], method, path) for path, ops in paths for method, op in ops.items()]
    ids = [operation_id for operation_id, _, _ in operations]
    assert len(ids) == len(set(ids)), sorted(ids)
    by_id = {operation_id: (method, path) for operation_id, method, path in operations}
    assert by_id["users_create_user"] == ("post", "/api/v1/users/")
    assert by_id["auth_create_user"] == ("post", "/api/v1/auth/users")
    assert by_id["members_create_user"] == ("post", "/api/v1/members/")
    assert by_id["auth_login"] == ("post", "/api/v1/auth/login")

    def body(path: str, method: str = "post") -> str:
        content = schema["paths"][path][method]["requestBody"]["content"]
        return str(next(iter(content.values()))["schema"]["$ref"]).rsplit("/", 1)[1]

    assert body("/api/v1/users/") == "UserCreate"
    assert body("/api/v1/auth/users") == "AuthUserCreate"
    assert body("/api/v1/members/") == "MembersUserCreate"
    assert body("/api/v1/auth/login") == "Body_auth_login"  # a form body FastAPI names after the operation


def test_docs_pages_load_their_assets_from_the_app(project: Callable[..., Path]) -> None:
    """/docs and /redoc on a machine without internet: every script, style and icon comes from the app."""
    root = project(auth="keycloak", with_example_module=False)
    local = json.loads(uv(root, "python", "-c", PAGES).stdout.strip().splitlines()[-1])
    for page, assets in local.items():
        assert assets, f"{page} names no asset"
        assert {url: status for url, status in assets.items() if status != 200} == {}, page
    assert any(url.endswith("swagger-ui-bundle.js") for url in local["/docs"])
    assert any(url.endswith("redoc.standalone.js") for url in local["/redoc"])

    # The CDN stays a setting away.
    cdn = json.loads(uv(root, "python", "-c", PAGES, env={"APP_DOCS__ASSETS": "cdn"}).stdout.strip().splitlines()[-1])
    assert all(url.startswith("https://") for assets in cdn.values() for url in assets), cdn
