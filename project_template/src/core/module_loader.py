"""Finds every package under `modules/` and mounts its `router` under `/api/v1/<name>`.

Discovery happens at start-up, so copying a module into `modules/` is all it
takes: no registry file to edit. Order is alphabetical, hence deterministic.
Loading a module also imports its `events/` and every file of its `tasks/`, which
declares its background tasks and event handlers (src/core/jobs/), in the API and the worker.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from fastapi import APIRouter, FastAPI

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
    import_background_work(name)
    router = getattr(package, "router", None)
    if not isinstance(router, APIRouter):
        raise ModuleLoadError(f"module '{name}' must export `router` (an APIRouter) from modules/{name}/__init__.py")
    return LoadedModule(name=name, package=package, router=router, prefix=f"{api_prefix}/{name}")


def import_background_work(name: str) -> None:
    """Import `modules/<name>/events/` and each file of `modules/<name>/tasks/` (their decorators register them)."""
    for part in ("events", "tasks"):
        if not (MODULES_DIR / name / part / "__init__.py").is_file():
            continue
        try:
            package = importlib.import_module(f"modules.{name}.{part}")
            for found in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
                importlib.import_module(found.name)
        except Exception as exc:
            raise ModuleLoadError(
                f"module '{name}': its {part}/ failed to import: {type(exc).__name__}: {exc}"
            ) from exc


def load_modules(api_prefix: str = "/api/v1") -> list[LoadedModule]:
    """Import every module, with its tasks and event handlers (the API and the worker load the same set)."""
    return [load_module(name, api_prefix) for name in module_names()]


def discover_modules(app: FastAPI, api_prefix: str = "/api/v1") -> list[LoadedModule]:
    """Import every module and include its router; raises `ModuleLoadError` naming the culprit."""
    loaded = load_modules(api_prefix)
    for module in loaded:
        app.include_router(module.router, prefix=module.prefix)
    return loaded
