from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from src.core import module_loader
from src.core.module_loader import ModuleLoadError, discover_modules, module_names


def test_every_module_package_is_mounted_under_its_prefix(app: FastAPI) -> None:
    names = module_names()
    assert names == sorted(names)
    mounted = {m.name: m.prefix for m in app.state.modules}
    assert mounted == {name: f"/api/v1/{name}" for name in names}


def _fake_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: dict[str, str]) -> Path:
    pkg = tmp_path / "modules"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, source in body.items():
        (pkg / name).mkdir()
        (pkg / name / "__init__.py").write_text(source)
    (pkg / "not_a_module").mkdir()  # no __init__.py: ignored
    monkeypatch.setattr(module_loader, "MODULES_DIR", pkg)
    monkeypatch.syspath_prepend(str(tmp_path))
    for key in [k for k in __import__("sys").modules if k == "modules" or k.startswith("modules.")]:
        monkeypatch.delitem(__import__("sys").modules, key)
    return pkg


ROUTER = """
from fastapi import APIRouter
router = APIRouter()
@router.get('/ping')
async def ping() -> str:
    return 'pong'
"""


def test_discovery_order_and_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = _fake_modules(tmp_path, monkeypatch, {"zeta": ROUTER, "alpha": ROUTER})
    app = FastAPI()
    loaded = discover_modules(app)
    assert [m.name for m in loaded] == ["alpha", "zeta"]
    assert {"/api/v1/alpha/ping", "/api/v1/zeta/ping"} <= set(app.openapi()["paths"])
    assert module_names(pkg) == ["alpha", "zeta"]


def test_broken_module_stops_startup_with_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_modules(tmp_path, monkeypatch, {"good": ROUTER, "broken": "import does_not_exist_anywhere\n"})
    with pytest.raises(ModuleLoadError, match="module 'broken' failed to import: ModuleNotFoundError"):
        discover_modules(FastAPI())


def test_module_without_router_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_modules(tmp_path, monkeypatch, {"empty": "x = 1\n"})
    with pytest.raises(ModuleLoadError, match="module 'empty' must export `router`"):
        discover_modules(FastAPI())


OWN_PATHS = """
from fastapi import APIRouter
router = APIRouter()
@router.get('/')
async def index() -> str:
    return __name__
@router.get('/{item_id}')
async def item(item_id: int) -> str:
    return f'{__name__} {item_id}'
"""


async def test_each_request_reaches_its_own_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `user` is a prefix of `users`: the module is picked by its whole path segment.
    _fake_modules(tmp_path, monkeypatch, {"user": OWN_PATHS, "users": OWN_PATHS, "zeta": ROUTER})
    app = FastAPI()
    discover_modules(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/api/v1/users/")).json() == "modules.users"
        assert (await client.get("/api/v1/user/7")).json() == "modules.user 7"
        assert (await client.get("/api/v1/users/7")).json() == "modules.users 7"
        assert (await client.get("/api/v1/zeta/ping")).json() == "pong"
        assert (await client.post("/api/v1/zeta/ping")).status_code == 405
        assert (await client.get("/api/v1/usersx/7")).status_code == 404
        redirect = await client.get("/api/v1/users")
        assert redirect.status_code == 307
        assert redirect.headers["location"] == "http://test/api/v1/users/"
