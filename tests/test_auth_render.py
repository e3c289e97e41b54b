"""Each auth answer renders its own files and nothing of the other mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

RBAC_ONLY = [
    "modules/auth/__init__.py",
    "modules/auth/alembic/versions/2026-11-25_create_auth.py",
    "scripts/create_admin.py",
    "src/core/security/rbac.py",
]
KEYCLOAK_ONLY = ["src/core/security/keycloak.py", "tests/test_auth_keycloak.py"]
BOTH = [
    "src/core/security/__init__.py",
    "src/middleware/auth.py",
    "tests/auth_helpers.py",
    "tests/test_auth_attacks.py",
    "docs/auth.md",
]


@pytest.mark.parametrize(
    ("auth", "present", "absent"), [("rbac", RBAC_ONLY, KEYCLOAK_ONLY), ("keycloak", KEYCLOAK_ONLY, RBAC_ONLY)]
)
def test_mode_specific_files(project: Callable[..., Path], auth: str, present: list[str], absent: list[str]) -> None:
    root = project(auth=auth, with_example_module=auth == "rbac")
    assert [p for p in present + BOTH if not (root / p).is_file()] == []
    assert [p for p in absent if (root / p).exists()] == []
    pyproject = (root / "pyproject.toml").read_text()
    assert ('"pwdlib[argon2]' in pyproject) is (auth == "rbac")
    assert ('"python-keycloak' in pyproject) is (auth == "keycloak")
    assert "-p tests.auth_helpers" in pyproject


def test_rbac_secret_is_a_development_placeholder_only(project: Callable[..., Path]) -> None:
    root = project(auth="rbac", with_example_module=True)
    assert "${JWT_SECRET_KEY}" in (root / "config" / "production.yml").read_text()
    assert "change-me" in (root / "config" / "development.yml").read_text()
