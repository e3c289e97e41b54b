"""`uv run pytest modules/<name>`: that module's tests, against an app with only it and its declared dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from src.app import create_app
from src.core.config import PROJECT_ROOT
from src.core.module_loader import module_names
from tests.fixtures import modules_alone, settings_for
from tests.test_module_loader import ROUTER, _fake_modules


def test_tests_of_modules_only_select_them_and_their_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = {"alpha": ROUTER, "beta": ROUTER, "gamma": ROUTER, "delta": ROUTER}
    declared = {"alpha": "depends_on = ('beta',)\n", "beta": "depends_on = ('gamma',)\n"}
    root = _fake_modules(tmp_path, monkeypatch, modules, declared)
    test = "tests/test_x.py"
    assert modules_alone([root / "alpha" / test], root) == ["alpha", "beta", "gamma"]
    assert modules_alone([root / "delta" / test, root / "gamma" / test], root) == ["delta", "gamma"]
    assert modules_alone([root / "delta" / test, tmp_path / "tests" / "test_app.py"], root) is None  # the whole app
    assert modules_alone([], root) is None


def test_the_app_of_a_module_tested_alone_mounts_only_it() -> None:
    for name in module_names():
        app: FastAPI = create_app(settings_for([name]))
        assert [m.name for m in app.state.modules] == [name]
    everything = create_app(settings_for(None))
    assert sorted(m.name for m in everything.state.modules) == module_names()


@pytest.mark.skipif(not module_names(), reason="this project has no module under modules/")
def test_pytest_on_a_module_folder_says_which_modules_run() -> None:
    name = module_names()[0]
    result = subprocess.run(  # noqa: S603 - pytest on this project, no shell
        [sys.executable, "-m", "pytest", f"modules/{name}", "--collect-only", "-q", "-p", "no:randomly"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"app modules: {name} (the others switched off)" in result.stdout, result.stdout + result.stderr
