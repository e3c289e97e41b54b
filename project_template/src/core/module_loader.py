"""Finds every package under `modules/` and mounts its `router` under `/api/v1/<name>`.

Discovery happens at start-up, so copying a module into `modules/` is all it
takes: no registry file to edit. Order is alphabetical, hence deterministic.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from fastapi import APIRouter, FastAPI
from starlette.routing import Match
from starlette.types import Scope

from src.core.config import PROJECT_ROOT

MODULES_DIR = PROJECT_ROOT / "modules"


class ModuleLoadError(RuntimeError):
    """A module could not be loaded; start-up stops and names it."""


@dataclass(frozen=True)
class LoadedModule:
    name: str
    package: ModuleType
    router: APIRouter
    prefix: str


def module_names(modules_dir: Path | None = None) -> list[str]:
    """Every package directly under `modules/`, sorted."""
    modules_dir = modules_dir or MODULES_DIR
    if not modules_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in modules_dir.iterdir()
        if p.is_dir() and (p / "__init__.py").is_file() and p.name.isidentifier() and not p.name.startswith("_")
    )


def load_module(name: str, api_prefix: str = "/api/v1") -> LoadedModule:
    try:
        package = importlib.import_module(f"modules.{name}")
    except Exception as exc:
        raise ModuleLoadError(f"module '{name}' failed to import: {type(exc).__name__}: {exc}") from exc
    router = getattr(package, "router", None)
    if not isinstance(router, APIRouter):
        raise ModuleLoadError(f"module '{name}' must export `router` (an APIRouter) from modules/{name}/__init__.py")
    return LoadedModule(name=name, package=package, router=router, prefix=f"{api_prefix}/{name}")


class _PrefixGate(APIRouter):
    """One module's routes, tried only for paths under its prefix.

    FastAPI tries every route of every included router in turn (about 12 us per module of
    CRUD routes): a request to the 50th module paid 0.6 ms before its own route ran. One
    string test per module instead (docs/performance.md).
    """

    def __init__(self, module: LoadedModule, api_prefix: str) -> None:
        super().__init__()
        self.gate = module.prefix
        # Included under `/<name>` here and `api_prefix` in the app: FastAPI checks every route of a
        # router included without a prefix, which cost 5 ms per module at start-up.
        self.include_router(module.router, prefix=module.prefix.removeprefix(api_prefix))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):  # behind a proxy's prefix, as Starlette's own routing reads it
            path = path[len(root) :]
        if path != self.gate and not path.startswith(self.gate + "/"):
            return Match.NONE, {}
        return super().matches(scope)


def discover_modules(app: FastAPI, api_prefix: str = "/api/v1") -> list[LoadedModule]:
    """Import every module and include its router; raises `ModuleLoadError` naming the culprit."""
    loaded = [load_module(name, api_prefix) for name in module_names()]
    for module in loaded:
        app.include_router(_PrefixGate(module, api_prefix), prefix=api_prefix)
    return loaded
