"""Fixtures of the auth tests: cheap hashing, and factories of users and roles (shared fixtures: tests/fixtures.py).

Rows are made through the services, inside the test's transaction, and gone after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from modules.auth.schemas import PermissionCreate, RoleCreate, UserCreate, UserRead
from modules.auth.services import identity_service, passwords
from src.core.db import database

MakeUser = Callable[..., Awaitable[UserRead]]
PASSWORD = "correct-horse"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with test-sized parameters: the same code path, a thousandth of the cost."""
    monkeypatch.setattr(passwords, "hasher", PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024),)))


@pytest.fixture
def make_user(app: FastAPI) -> MakeUser:
    """`await make_user("bob", "password", roles=["admin"])`; missing roles are created."""

    async def make(username: str, password: str = PASSWORD, *, roles: tuple[str, ...] = ()) -> UserRead:
        async with database.sessionmaker() as session:
            for role in roles:
                await identity_service.ensure_role(session=session, name=role)
            data = UserCreate(username=username, password=password, roles=list(roles))
            return await identity_service.create_user(session=session, data=data)

    return make


@pytest.fixture
def role_with_permissions(app: FastAPI) -> Callable[..., Awaitable[None]]:
    async def make(name: str, *permissions: str) -> None:
        async with database.sessionmaker() as session:
            for permission in permissions:
                await identity_service.create_permission(session=session, data=PermissionCreate(name=permission))
            await identity_service.create_role(
                session=session, data=RoleCreate(name=name, permissions=list(permissions))
            )

    return make
