"""Fixtures of the auth tests: the module's own tables, emptied per test; cheap hashing; users on demand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import delete

from modules.auth.models import (
    AuthLoginFailure,
    AuthPermission,
    AuthRefreshToken,
    AuthRole,
    AuthUser,
    role_permissions,
    user_roles,
)
from modules.auth.schemas import PermissionCreate, RoleCreate, UserCreate, UserRead
from modules.auth.services import identity_service, passwords
from src.core.db import database
from src.core.migrations import downgrade, upgrade

MakeUser = Callable[..., Awaitable[UserRead]]
PASSWORD = "correct-horse"


@pytest.fixture(scope="session", autouse=True)
async def auth_tables() -> None:
    """Tables at head through the module's own history (other modules untouched)."""
    await downgrade("auth", "base")
    await upgrade(["auth"])
    await database.dispose()


@pytest.fixture(autouse=True)
async def empty_tables(auth_tables: None) -> None:
    async with database.sessionmaker() as session:
        for table in (user_roles, role_permissions):
            await session.execute(delete(table))
        for model in (AuthRefreshToken, AuthLoginFailure, AuthUser, AuthRole, AuthPermission):
            await session.execute(delete(model))
        await session.commit()


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with test-sized parameters: the same code path, a thousandth of the cost."""
    monkeypatch.setattr(passwords, "hasher", PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024),)))


@pytest.fixture
def make_user() -> MakeUser:
    """`await make_user("bob", "password", roles=["admin"])`; missing roles are created."""

    async def make(username: str, password: str = PASSWORD, *, roles: tuple[str, ...] = ()) -> UserRead:
        async with database.sessionmaker() as session:
            for role in roles:
                await identity_service.ensure_role(session=session, name=role)
            data = UserCreate(username=username, password=password, roles=list(roles))
            return await identity_service.create_user(session=session, data=data)

    return make


@pytest.fixture
def role_with_permissions() -> Callable[..., Awaitable[None]]:
    async def make(name: str, *permissions: str) -> None:
        async with database.sessionmaker() as session:
            for permission in permissions:
                await identity_service.create_permission(session=session, data=PermissionCreate(name=permission))
            await identity_service.create_role(
                session=session, data=RoleCreate(name=name, permissions=list(permissions))
            )

    return make
