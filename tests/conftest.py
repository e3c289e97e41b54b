"""Fixtures of the template's tests.

`template` is a committed snapshot of this working tree; `project(...)`
renders it once per answer combination and session, with its environment
synced. `require()` tells whether PostgreSQL, Redis and RabbitMQ are there: tests that
need them skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CI, render, run, service_available, snapshot_template


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def project(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Render (once per session per answers) and `uv sync` a project; tests must not modify it."""
    cache: dict[tuple[tuple[str, Any], ...], Path] = {}

    def get(**answers: Any) -> Path:
        key = tuple(sorted(answers.items()))
        if key not in cache:
            dst = tmp_path_factory.mktemp("project") / "my_api"
            render(template, dst, **answers)
            run(["uv", "sync", "--quiet"], dst)
            cache[key] = dst
        return cache[key]

    return get


@pytest.fixture
def fresh_project(template: Path, tmp_path: Path) -> Callable[..., Path]:
    """Render a project a test may modify."""

    def get(**answers: Any) -> Path:
        dst = render(template, tmp_path / "my_api", **answers)
        run(["uv", "sync", "--quiet"], dst)
        return dst

    return get


def require(kind: str) -> None:
    reason = service_available(kind)
    if reason is None:
        return
    if CI:
        pytest.fail(f"CI=true requires {kind}: {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (async URL), dropped afterwards."""
    from tests.helpers import drop_postgres_database, fresh_postgres_database

    require("postgres")
    url = fresh_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def redis_url() -> str:
    require("redis")
    from tests.helpers import REDIS_URL

    return f"{REDIS_URL}/0"


@pytest.fixture
def rabbitmq_url() -> str:
    require("rabbitmq")
    from tests.helpers import RABBITMQ_URL

    return RABBITMQ_URL


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures tests recorded with `record_property("figure", "name: value")` (image size, build time)."""
    figures = [
        str(value)
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", ())
        if name == "figure"
    ]
    if figures:
        terminalreporter.write_sep("-", "figures")
        for figure in dict.fromkeys(figures):
            terminalreporter.write_line(figure)
