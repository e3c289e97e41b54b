"""Finds every package under `modules/`, starts the enabled ones in dependency order, mounts their routers.

Discovery happens at start-up, so copying a module into `modules/` is all it
takes: no registry file to edit. A module's `settings.py` (optional) holds its
`Settings` model and `depends_on`, the modules it uses; those start first
(alphabetical otherwise, hence deterministic). `modules.disabled` in config
switches modules off: `enabled_modules(settings)` is the one list that everything a
module plugs in goes through.
Loading a module also imports its `events/` and every file of its `tasks/`, which
declares its background tasks and event handlers (src/core/jobs/), in the API and the worker.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from starlette.routing import Match
from starlette.types import Scope

from src.core import module_settings
from src.core.config import PROJECT_ROOT, ConfigError, Settings

MODULES_DIR = PROJECT_ROOT / "modules"


class ModuleLoadError(RuntimeError):
    """A module could not be loaded; start-up stops and names it."""


@dataclass(frozen=True)
class Manifest:
    """What `modules/<name>/settings.py` declares (a module without the file: no settings, no dependencies)."""

    name: str
    settings_model: type[BaseModel] | None = None
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedModule:
    name: str
    package: ModuleType
    router: APIRouter
    prefix: str
    settings: BaseModel | None = None
    depends_on: tuple[str, ...] = ()


def module_names(modules_dir: Path | None = None) -> list[str]:
    """Every package directly under `modules/`, sorted (switched off or not)."""
    modules_dir = modules_dir or MODULES_DIR
    if not modules_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in modules_dir.iterdir()
        if p.is_dir() and (p / "__init__.py").is_file() and p.name.isidentifier() and not p.name.startswith("_")
    )


def manifest(name: str) -> Manifest:
    """The module's declared settings model and dependencies, imported without importing the module's routes."""
    if not (MODULES_DIR / name / "settings.py").is_file():
        return Manifest(name)
    try:
        declared = importlib.import_module(f"modules.{name}.settings")
    except Exception as exc:
        raise ModuleLoadError(f"module '{name}': settings.py failed to import: {type(exc).__name__}: {exc}") from exc
    model = getattr(declared, "Settings", None)
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ModuleLoadError(f"module '{name}': `Settings` in modules/{name}/settings.py must be a pydantic model")
    depends_on = getattr(declared, "depends_on", ())
    if not (isinstance(depends_on, tuple) and all(isinstance(d, str) for d in depends_on)):
        raise ModuleLoadError(f"module '{name}': `depends_on` in modules/{name}/settings.py must be a tuple of names")
    return Manifest(name, model, depends_on)


def start_order(manifests: dict[str, Manifest], disabled: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The enabled modules, each after those it depends on; alphabetical where the order is free."""
    for name, found in sorted(manifests.items()):
        for used in found.depends_on:
            if used not in manifests:
                raise ModuleLoadError(f"module '{name}' depends on '{used}', which is not a module under modules/")
            if used in disabled and name not in disabled:
                raise ConfigError(
                    f"module '{name}' depends on '{used}', which modules.disabled switches off: "
                    f"enable '{used}' or disable '{name}' too"
                )
    order: list[str] = []
    placed: set[str] = set()
    waiting = sorted(manifests)
    while waiting:
        ready = [n for n in waiting if placed.issuperset(manifests[n].depends_on)]
        if not ready:
            raise ModuleLoadError(f"modules depend on each other in a cycle: {_cycle(manifests, waiting)}")
        order += ready
        placed.update(ready)
        waiting = [n for n in waiting if n not in placed]
    return [name for name in order if name not in disabled]


def _cycle(manifests: dict[str, Manifest], waiting: list[str]) -> str:
    """One cycle among the modules that could not be placed: `a -> b -> a`."""
    path = [waiting[0]]
    while True:
        following = next(d for d in manifests[path[-1]].depends_on if d in waiting)
        if following in path:
            return " -> ".join([*path[path.index(following) :], following])
        path.append(following)


def manifests() -> dict[str, Manifest]:
    return {name: manifest(name) for name in module_names()}


def enabled_modules(settings: Settings, found: dict[str, Manifest] | None = None) -> list[str]:
    """The modules to start, in start order: not in `modules.disabled`, dependencies checked.

    The hook for anything a module plugs in (routes, tasks, event handlers): a switched-off
    module's are skipped by asking this list, not by a check of their own.
    """
    found = manifests() if found is None else found
    disabled = set(settings.modules.disabled)
    if unknown := sorted(disabled - set(found)):
        raise ConfigError(f"modules.disabled names '{unknown[0]}', which is not a module (known: {', '.join(found)})")
    return start_order(found, disabled)


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


def load_modules(settings: Settings) -> list[LoadedModule]:
    """Check each module's settings, then import every enabled module in dependency order, with its
    tasks and event handlers (the API and the worker load the same set).

    Raises `ConfigError` (a bad `modules:` section, a dependency switched off) or
    `ModuleLoadError` (a module that cannot load), each naming the culprit.
    """
    found = manifests()
    module_settings.check_sections(list(found), settings)
    order = enabled_modules(settings, found)
    values = {name: module_settings.check_section(name, found[name].settings_model, settings) for name in order}
    module_settings.install({name: value for name, value in values.items() if value is not None})
    return [
        replace(load_module(name, settings.api_prefix), settings=values[name], depends_on=found[name].depends_on)
        for name in order
    ]


def discover_modules(app: FastAPI, settings: Settings) -> list[LoadedModule]:
    """`load_modules`, then include each module's router behind its prefix gate."""
    loaded = load_modules(settings)
    for module in loaded:
        app.include_router(_PrefixGate(module, settings.api_prefix), prefix=settings.api_prefix)
    return loaded
