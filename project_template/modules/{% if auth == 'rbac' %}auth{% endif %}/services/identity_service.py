"""Users, roles and permissions: create, read, change, delete. Returns schemas, never models."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modules.auth.enums import BuiltinRole
from modules.auth.models import AuthPermission, AuthRefreshToken, AuthRole, AuthUser, role_permissions, user_roles
from modules.auth.schemas import (
    PermissionCreate,
    PermissionRead,
    RoleCreate,
    RoleRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from modules.auth.services import passwords


class IdentityConflictError(Exception):
    """The change conflicts with what exists, e.g. a name already taken (the route answers 409)."""


class IdentityNotFoundError(Exception):
    """No such user, role or permission (the route answers 404); the message names it."""


class UnknownNameError(IdentityNotFoundError):
    """The request names roles or permissions that do not exist (the route answers 422)."""

    def __init__(self, kind: str, names: Iterable[str]) -> None:
        self.names = sorted(names)
        super().__init__(f"unknown {kind}: {', '.join(self.names)}")


class LockoutError(IdentityConflictError):
    """The change would leave nobody able to administer users and roles (the route answers 409)."""


class IdentityService:
    """User, role and permission management; the admin routes and scripts/create_admin.py use it."""

    # -- users --------------------------------------------------------------------------
    async def create_user(self, *, session: AsyncSession, data: UserCreate) -> UserRead:
        """Create a user with a hashed password and the named (existing) roles."""
        user = AuthUser(
            username=data.username,
            email=data.email,
            password_hash=await passwords.hash_password(data.password),
            is_active=True,
            roles=await self._roles(session, data.roles),
        )
        session.add(user)
        await self._commit(session, f"username {data.username!r} is already taken")
        return await self.get_user(session=session, user_id=user.id)

    async def get_user(self, *, session: AsyncSession, user_id: int) -> UserRead:
        """One user by id."""
        return UserRead.model_validate(await self._user(session, user_id))

    async def find_user(self, *, session: AsyncSession, username: str) -> UserRead | None:
        """One user by username (case-insensitive), or None."""
        user = await session.scalar(select(AuthUser).where(AuthUser.username == username.strip().lower()))
        return UserRead.model_validate(user) if user else None

    async def list_users(self, *, session: AsyncSession, offset: int = 0, limit: int = 50) -> list[UserRead]:
        """Users ordered by id."""
        rows = await session.scalars(select(AuthUser).order_by(AuthUser.id).offset(offset).limit(limit))
        return [UserRead.model_validate(row) for row in rows]

    async def count_users(self, *, session: AsyncSession) -> int:
        """How many users exist."""
        return int(await session.scalar(select(func.count()).select_from(AuthUser)) or 0)

    async def update_user(self, *, session: AsyncSession, user_id: int, data: UserUpdate) -> UserRead:
        """Change password, email, active flag or roles; unset fields stay."""
        user = await self._user(session, user_id)
        changes = data.model_dump(exclude_unset=True)
        demoted = data.roles is not None and BuiltinRole.ADMIN not in data.roles
        if demoted or data.is_active is False:
            await self._keep_an_admin(session, user)
        if "password" in changes and data.password is not None:
            user.password_hash = await passwords.hash_password(data.password)
        if "email" in changes:
            user.email = data.email
        if data.is_active is not None:
            user.is_active = data.is_active
        if data.roles is not None:
            user.roles = await self._roles(session, data.roles)
        await session.commit()
        return await self.get_user(session=session, user_id=user_id)

    async def delete_user(self, *, session: AsyncSession, user_id: int) -> None:
        """Delete a user with its role links and refresh tokens."""
        user = await self._user(session, user_id)
        await self._keep_an_admin(session, user)
        # Explicit, not left to ON DELETE CASCADE: SQLite ignores foreign keys unless told
        # otherwise, and a reused id must not inherit a deleted user's roles or tokens.
        await session.execute(delete(user_roles).where(user_roles.c.user_id == user.id))
        await session.execute(delete(AuthRefreshToken).where(AuthRefreshToken.user_id == user.id))
        await session.execute(delete(AuthUser).where(AuthUser.id == user.id))
        await session.commit()
        session.expunge(user)

    # -- roles ----------------------------------------------------------------------------
    async def create_role(self, *, session: AsyncSession, data: RoleCreate) -> RoleRead:
        """Create a role holding the named (existing) permissions."""
        role = AuthRole(
            name=data.name, description=data.description, permissions=await self._permissions(session, data.permissions)
        )
        session.add(role)
        await self._commit(session, f"role {data.name!r} already exists")
        return RoleRead.model_validate(role)

    async def ensure_role(self, *, session: AsyncSession, name: str, description: str = "") -> RoleRead:
        """The role `name`, created if missing."""
        role = await session.scalar(select(AuthRole).where(AuthRole.name == name))
        if role is None:
            return await self.create_role(session=session, data=RoleCreate(name=name, description=description))
        return RoleRead.model_validate(role)

    async def list_roles(self, *, session: AsyncSession) -> list[RoleRead]:
        """Every role, by name."""
        return [RoleRead.model_validate(r) for r in await session.scalars(select(AuthRole).order_by(AuthRole.name))]

    async def set_role_permissions(self, *, session: AsyncSession, name: str, permissions: list[str]) -> RoleRead:
        """Replace the permissions of role `name`."""
        role = await self._role(session, name)
        role.permissions = await self._permissions(session, permissions)
        await session.commit()
        return RoleRead.model_validate(role)

    async def delete_role(self, *, session: AsyncSession, name: str) -> None:
        """Delete role `name`; users simply stop holding it. The built-in `admin` role stays."""
        if name == BuiltinRole.ADMIN:
            raise LockoutError(f"role {name!r} is built in: the admin routes and scripts/create_admin.py need it")
        role = await self._role(session, name)
        await session.execute(delete(user_roles).where(user_roles.c.role_id == role.id))
        await session.execute(delete(role_permissions).where(role_permissions.c.role_id == role.id))
        await session.execute(delete(AuthRole).where(AuthRole.id == role.id))
        await session.commit()
        session.expunge(role)

    # -- permissions --------------------------------------------------------------------------
    async def create_permission(self, *, session: AsyncSession, data: PermissionCreate) -> PermissionRead:
        """Create a permission such as `orders:write`."""
        permission = AuthPermission(name=data.name, description=data.description)
        session.add(permission)
        await self._commit(session, f"permission {data.name!r} already exists")
        return PermissionRead.model_validate(permission)

    async def list_permissions(self, *, session: AsyncSession) -> list[PermissionRead]:
        """Every permission, by name."""
        rows = await session.scalars(select(AuthPermission).order_by(AuthPermission.name))
        return [PermissionRead.model_validate(row) for row in rows]

    async def delete_permission(self, *, session: AsyncSession, name: str) -> None:
        """Delete permission `name` from every role."""
        permission = await session.scalar(select(AuthPermission).where(AuthPermission.name == name))
        if permission is None:
            raise IdentityNotFoundError(f"permission {name!r} does not exist")
        await session.execute(delete(role_permissions).where(role_permissions.c.permission_id == permission.id))
        await session.execute(delete(AuthPermission).where(AuthPermission.id == permission.id))
        await session.commit()
        session.expunge(permission)

    # -- helpers ------------------------------------------------------------------------------
    async def _user(self, session: AsyncSession, user_id: int) -> AuthUser:
        # populate_existing reloads roles eagerly: a lazy load would fail under asyncio.
        query = select(AuthUser).where(AuthUser.id == user_id).execution_options(populate_existing=True)
        user = await session.scalar(query)
        if user is None:
            raise IdentityNotFoundError(f"user {user_id} does not exist")
        return user

    async def _role(self, session: AsyncSession, name: str) -> AuthRole:
        role = await session.scalar(select(AuthRole).where(AuthRole.name == name))
        if role is None:
            raise IdentityNotFoundError(f"role {name!r} does not exist")
        return role

    async def _roles(self, session: AsyncSession, names: Iterable[str]) -> list[AuthRole]:
        wanted = set(names)
        if not wanted:
            return []
        roles = list(await session.scalars(select(AuthRole).where(AuthRole.name.in_(wanted))))
        missing = wanted - {role.name for role in roles}
        if missing:
            raise UnknownNameError("roles", missing)
        return roles

    async def _permissions(self, session: AsyncSession, names: Iterable[str]) -> list[AuthPermission]:
        wanted = set(names)
        if not wanted:
            return []
        found = list(await session.scalars(select(AuthPermission).where(AuthPermission.name.in_(wanted))))
        missing = wanted - {permission.name for permission in found}
        if missing:
            raise UnknownNameError("permissions", missing)
        return found

    async def _keep_an_admin(self, session: AsyncSession, user: AuthUser) -> None:
        """Refuse to delete, demote or deactivate the last active administrator."""
        admin = next((role for role in user.roles if role.name == BuiltinRole.ADMIN), None)
        if admin is None or not user.is_active:
            return
        # Locking the role's row serialises these checks on PostgreSQL: two admins removing each
        # other at once must not both succeed (SQLite lets one writer at a time anyway).
        await session.execute(select(AuthRole.id).where(AuthRole.id == admin.id).with_for_update())
        others = await session.scalar(
            select(func.count())
            .select_from(user_roles)
            .join(AuthUser, AuthUser.id == user_roles.c.user_id)
            .where(user_roles.c.role_id == admin.id, AuthUser.is_active, AuthUser.id != user.id)
        )
        if not others:
            raise LockoutError(
                f"user {user.username!r} is the last active administrator: give another user the admin role first"
            )

    async def _commit(self, session: AsyncSession, conflict: str) -> None:
        try:
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            raise IdentityConflictError(conflict) from exc


identity_service = IdentityService()
