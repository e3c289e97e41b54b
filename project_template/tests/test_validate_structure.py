"""The project keeps its own module boundaries (docs/boundaries.md).

`scripts/validate_structure.py` reads the sources; the route test below checks the
same rule on the running app, where nothing can hide from it.
"""

from __future__ import annotations

import json
import subprocess
import sys

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts

from src.core.config import PROJECT_ROOT, Settings
from src.core.module_loader import module_names

SCRIPT = PROJECT_ROOT / "scripts" / "validate_structure.py"


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own script, no shell
        [sys.executable, str(SCRIPT), *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )


def test_every_module_keeps_its_boundaries() -> None:
    result = validate("--format", "json")
    report = json.loads(result.stdout)
    readable = "\n".join(f"{f['path']}:{f['line']}: {f['rule']} {f['message']}" for f in report["findings"])
    assert result.returncode == 0, readable
    assert report["modules"] == module_names()


def test_dependency_graph_lists_every_module() -> None:
    result = validate("--graph")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("graph LR\n")
    for name in module_names():
        assert f"m_{name}[{name}]" in result.stdout


def test_every_route_of_a_module_is_served_under_its_prefix(app: FastAPI, settings: Settings) -> None:
    served = []
    # The routes as served, behind the routers that include them (app.routes holds the routers).
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute | APIWebSocketRoute):
            continue
        owner = route.endpoint.__module__.split(".")
        if owner[0] != "modules":
            continue
        path = str(context.path)
        prefix = f"{settings.api_prefix}/{owner[1]}"
        assert path == prefix or path.startswith(prefix + "/"), f"{path} is outside {prefix}"
        assert ".." not in path.split("/"), path
        served.append(owner[1])
    assert sorted(set(served)) == sorted(m.name for m in app.state.modules if m.router.routes)
