from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from src.core import module_loader
from src.core.config import ConfigError, Settings, load_settings
from src.core.module_loader import ModuleLoadError, discover_modules, enabled_modules, module_names


def test_every_module_package_is_mounted_under_its_prefix(app: FastAPI) -> None:
    names = module_names()
    assert names == sorted(names)
    mounted = {m.name: m.prefix for m in app.state.modules}
    assert mounted == {name: f"/api/v1/{name}" for name in names}


def _fake_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: dict[str, str], declared: dict[str, str] | None = None
) -> Path:
    """Packages under a temporary modules/: `body` their __init__.py, `declared` their settings.py."""
    pkg = tmp_path / "modules"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, source in body.items():
        (pkg / name).mkdir()
        (pkg / name / "__init__.py").write_text(source)
    for name, source in (declared or {}).items():
        (pkg / name / "settings.py").write_text(source)
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
    loaded = discover_modules(app, load_settings())
    assert [m.name for m in loaded] == ["alpha", "zeta"]
    assert {"/api/v1/alpha/ping", "/api/v1/zeta/ping"} <= set(app.openapi()["paths"])
    assert module_names(pkg) == ["alpha", "zeta"]


def test_broken_module_stops_startup_with_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_modules(tmp_path, monkeypatch, {"good": ROUTER, "broken": "import does_not_exist_anywhere\n"})
    with pytest.raises(ModuleLoadError, match="module 'broken' failed to import: ModuleNotFoundError"):
        discover_modules(FastAPI(), load_settings())


def test_module_without_router_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_modules(tmp_path, monkeypatch, {"empty": "x = 1\n"})
    with pytest.raises(ModuleLoadError, match="module 'empty' must export `router`"):
        discover_modules(FastAPI(), load_settings())


def declares(*depends_on: str) -> str:
    return f"depends_on = {depends_on!r}\n"


def mounted(app: FastAPI) -> set[str]:
    return {path.split("/")[3] for path in app.openapi()["paths"]}


def test_start_order_follows_declared_dependencies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Alphabetical would be alpha, beta, gamma: alpha needs gamma, gamma needs beta.
    modules = {"alpha": ROUTER, "beta": ROUTER, "gamma": ROUTER}
    _fake_modules(tmp_path, monkeypatch, modules, {"alpha": declares("gamma"), "gamma": declares("beta")})
    loaded = discover_modules(FastAPI(), load_settings())
    assert [(m.name, m.depends_on) for m in loaded] == [("beta", ()), ("gamma", ("beta",)), ("alpha", ("gamma",))]


def test_a_dependency_cycle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modules = {"alpha": ROUTER, "beta": ROUTER, "gamma": ROUTER}
    cycle = {"alpha": declares("beta"), "beta": declares("gamma"), "gamma": declares("alpha")}
    _fake_modules(tmp_path, monkeypatch, modules, cycle)
    with pytest.raises(ModuleLoadError, match="in a cycle: alpha -> beta -> gamma -> alpha"):
        discover_modules(FastAPI(), load_settings())


def test_an_unknown_dependency_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_modules(tmp_path, monkeypatch, {"alpha": ROUTER}, {"alpha": declares("billing")})
    with pytest.raises(ModuleLoadError, match="module 'alpha' depends on 'billing', which is not a module"):
        discover_modules(FastAPI(), load_settings())


def disabling(*names: str) -> Settings:
    return load_settings(modules={"disabled": list(names)})


def test_a_disabled_module_is_not_mounted_and_enabling_it_needs_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_modules(tmp_path, monkeypatch, {"alpha": ROUTER, "beta": ROUTER})
    app = FastAPI()
    assert [m.name for m in discover_modules(app, disabling("beta"))] == ["alpha"]
    assert mounted(app) == {"alpha"}
    assert enabled_modules(disabling("beta")) == ["alpha"]  # what tasks and event handlers are registered from
    again = FastAPI()
    discover_modules(again, disabling())
    assert mounted(again) == {"alpha", "beta"}


def test_a_module_needing_a_disabled_one_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_modules(tmp_path, monkeypatch, {"alpha": ROUTER, "beta": ROUTER}, {"alpha": declares("beta")})
    message = "module 'alpha' depends on 'beta', which modules.disabled switches off: enable 'beta' or disable 'alpha'"
    with pytest.raises(ConfigError, match=message):
        discover_modules(FastAPI(), disabling("beta"))
    assert [m.name for m in discover_modules(FastAPI(), disabling("alpha", "beta"))] == []


def test_disabling_an_unknown_module_is_a_typo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_modules(tmp_path, monkeypatch, {"alpha": ROUTER})
    with pytest.raises(ConfigError, match=r"modules\.disabled names 'alpah', which is not a module"):
        discover_modules(FastAPI(), disabling("alpah"))


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
    discover_modules(app, load_settings())
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
