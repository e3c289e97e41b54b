"""Every answer combination renders a project that passes its own lint, types and tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import uv

COMBINATIONS = [
    pytest.param({"auth": "rbac", "with_example_module": True}, id="rbac-example"),
    pytest.param({"auth": "rbac", "with_example_module": False}, id="rbac-bare"),
    pytest.param({"auth": "keycloak", "with_example_module": True}, id="keycloak-example"),
    pytest.param({"auth": "keycloak", "with_example_module": False}, id="keycloak-bare"),
    pytest.param({"auth": "rbac", "with_example_module": False, "with_tracing": True}, id="rbac-bare-tracing"),
]


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_lint_format_types(project: Callable[..., Path], answers: dict[str, object]) -> None:
    root = project(**answers)
    uv(root, "ruff", "check", ".")
    uv(root, "ruff", "format", "--check", ".")
    uv(root, "mypy", ".")


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_own_suite_on_sqlite(project: Callable[..., Path], answers: dict[str, object]) -> None:
    root = project(**answers)
    result = uv(root, "pytest", "-q", "-p", "no:cacheprovider", env={"DATABASE_URL": "", "REDIS_URL": "", "CI": ""})
    assert " passed" in result.stdout


@pytest.mark.parametrize("answers", [COMBINATIONS[0], COMBINATIONS[2]])
def test_own_suite_on_postgres_and_redis(
    project: Callable[..., Path], answers: dict[str, object], postgres: str, redis_url: str, rabbitmq_url: str
) -> None:
    root = project(**answers)
    # RabbitMQ too: the jobs fault tests run one delivery through it (the `jobs.broker` setting is real).
    env = {"DATABASE_URL": postgres, "REDIS_URL": redis_url, "RABBITMQ_URL": rabbitmq_url, "CI": "true"}
    # The jobs fault tests (a minute of real workers) do not depend on the auth mode: once is enough.
    only = [] if answers["auth"] == "rbac" else ["-m", "not faults"]
    result = uv(root, "pytest", "-q", "-p", "no:cacheprovider", *only, env=env)
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1], result.stdout[-2000:]


def test_answers_are_recorded(project: Callable[..., Path]) -> None:
    root = project(auth="keycloak", with_example_module=True)
    answers = (root / ".copier-answers.yml").read_text()
    assert "auth: keycloak" in answers
    assert "keycloak_realm: my_api" in answers
    assert "_commit:" in answers
    config = (root / "config" / "development.yml").read_text()
    assert "mode: keycloak" in config
    assert "realm: my_api" in config


def test_keycloak_questions_only_for_keycloak(project: Callable[..., Path]) -> None:
    root = project(auth="rbac", with_example_module=False)
    answers = (root / ".copier-answers.yml").read_text()
    assert "auth: rbac" in answers
    assert "keycloak" not in answers


def test_example_module_is_a_module_render(project: Callable[..., Path]) -> None:
    root = project(auth="rbac", with_example_module=True)
    answers = (root / "modules" / "users" / ".copier-answers.yml").read_text()
    assert "template_kind: module" in answers
    assert "module_name: users" in answers
    assert "copier._vcs" not in answers, "the module must point at the real template, not Copier's temporary clone"
    assert not (project(auth="rbac", with_example_module=False) / "modules" / "users").exists()


def test_uv_lock_is_generated(project: Callable[..., Path]) -> None:
    root = project(auth="rbac", with_example_module=True)
    assert (root / "uv.lock").is_file()
    assert "fastapi" in (root / "uv.lock").read_text()
