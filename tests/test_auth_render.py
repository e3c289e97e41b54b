"""Each auth answer renders its own code, settings and test helpers, and nothing of the other mode."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

RBAC_ONLY = [
    "modules/auth/__init__.py",
    "modules/auth/alembic/versions/2026-11-25_create_auth.py",
    "scripts/create_admin.py",
    "src/core/security/rbac.py",
    "tests/test_auth_rbac.py",
]
KEYCLOAK_ONLY = [
    "src/core/security/keycloak/keys.py",
    "src/core/security/keycloak/backend.py",
    "src/core/security/keycloak/admin.py",
    "tests/fake_realm.py",
    "tests/test_auth_keycloak.py",
    "tests/test_health_keycloak.py",
]
BOTH = [
    "src/core/auth_settings.py",
    "src/core/security/__init__.py",
    "src/core/security/dependencies.py",
    "tests/auth_helpers.py",
    "tests/test_auth_api.py",
    "tests/test_auth_attacks.py",
    "docs/auth.md",
]
GONE = ["src/middleware/auth.py", "src/core/security/setup.py", "src/core/security/keycloak.py"]
# Code of the other mode: names that must not appear in a project's src/ and tests/ (docs may compare modes).
FOREIGN = {
    "rbac": re.compile(r"KeycloakSettings|JwksCache|jwks|FakeRealm|fake_realm|python-keycloak|from keycloak"),
    "keycloak": re.compile(r"RbacSettings|\bsecret_key|create_access_token|pwdlib|security\.rbac"),
}


@pytest.mark.parametrize(
    ("auth", "present", "absent"), [("rbac", RBAC_ONLY, KEYCLOAK_ONLY), ("keycloak", KEYCLOAK_ONLY, RBAC_ONLY)]
)
def test_mode_specific_files(project: Callable[..., Path], auth: str, present: list[str], absent: list[str]) -> None:
    root = project(auth=auth, with_example_module=auth == "rbac")
    assert [p for p in present + BOTH if not (root / p).is_file()] == []
    assert [p for p in absent + GONE if (root / p).exists()] == []
    pyproject = (root / "pyproject.toml").read_text()
    assert ('"pwdlib[argon2]' in pyproject) is (auth == "rbac")
    assert ('"python-keycloak' in pyproject) is (auth == "keycloak")
    assert "-p tests.auth_helpers" in pyproject


@pytest.mark.parametrize("auth", ["rbac", "keycloak"])
def test_no_code_of_the_other_mode(project: Callable[..., Path], auth: str) -> None:
    root = project(auth=auth, with_example_module=auth == "rbac")
    files = [p for folder in ("src", "tests", "modules", "scripts") for p in (root / folder).rglob("*.py")]
    files += list((root / "config").glob("*.yml"))
    found = [f"{p.relative_to(root)}: {m.group()}" for p in files for m in [FOREIGN[auth].search(p.read_text())] if m]
    assert found == []


def test_rbac_secret_is_a_development_placeholder_only(project: Callable[..., Path]) -> None:
    root = project(auth="rbac", with_example_module=True)
    assert "${JWT_SECRET_KEY}" in (root / "config" / "production.yml").read_text()
    assert "change-me" in (root / "config" / "development.yml").read_text()
