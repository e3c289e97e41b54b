"""Management of users, roles and permissions: the `admin` role only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError

from modules.auth.enums import BuiltinRole
from modules.auth.schemas import (
    PermissionCreate,
    PermissionRead,
    RoleCreate,
    RoleRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from modules.auth.services import IdentityConflictError, IdentityNotFoundError, UnknownNameError, identity_service
from src.core.db import SessionDep
from src.core.security import requires_role

router = APIRouter(dependencies=[Depends(requires_role(BuiltinRole.ADMIN))])

# PostgreSQL's `integer` stops at 2**31 - 1: a larger id or offset is a 422, not a database error.
MAX_INT = 2**31 - 1
UserId = Annotated[int, Path(ge=1, le=MAX_INT)]


@contextmanager
def _http_errors(*, names_at: tuple[str, ...] = ()) -> Iterator[None]:
    """The service's errors as status codes: unknown role or permission 422, missing row 404, conflict 409.

    `names_at`: where the request body holds the role or permission names, for the 422's `loc`.
    """
    try:
        yield
    except UnknownNameError as exc:  # a subclass of IdentityNotFoundError: first
        # FastAPI's own validation-error shape, so clients read every 422 the same way.
        error = {"type": "unknown_name", "loc": ("body", *names_at), "msg": str(exc), "input": exc.names}
        raise RequestValidationError([error]) from None
    except IdentityNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except IdentityConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.get("/users")
async def list_users(
    session: SessionDep, offset: int = Query(0, ge=0, le=MAX_INT), limit: int = Query(50, ge=1, le=200)
) -> list[UserRead]:
    return await identity_service.list_users(session=session, offset=offset, limit=limit)


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(data: UserCreate, session: SessionDep) -> UserRead:
    with _http_errors(names_at=("roles",)):
        return await identity_service.create_user(session=session, data=data)


@router.get("/users/{user_id}")
async def get_user(user_id: UserId, session: SessionDep) -> UserRead:
    with _http_errors():
        return await identity_service.get_user(session=session, user_id=user_id)


@router.patch("/users/{user_id}")
async def update_user(user_id: UserId, data: UserUpdate, session: SessionDep) -> UserRead:
    with _http_errors(names_at=("roles",)):
        return await identity_service.update_user(session=session, user_id=user_id, data=data)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: UserId, session: SessionDep) -> None:
    with _http_errors():
        await identity_service.delete_user(session=session, user_id=user_id)


@router.get("/roles")
async def list_roles(session: SessionDep) -> list[RoleRead]:
    return await identity_service.list_roles(session=session)


@router.post("/roles", status_code=status.HTTP_201_CREATED)
async def create_role(data: RoleCreate, session: SessionDep) -> RoleRead:
    with _http_errors(names_at=("permissions",)):
        return await identity_service.create_role(session=session, data=data)


@router.put("/roles/{name}/permissions")
async def set_role_permissions(name: str, permissions: list[str], session: SessionDep) -> RoleRead:
    with _http_errors():
        return await identity_service.set_role_permissions(session=session, name=name, permissions=permissions)


@router.delete("/roles/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_role(name: str, session: SessionDep) -> None:
    with _http_errors():
        await identity_service.delete_role(session=session, name=name)


@router.get("/permissions")
async def list_permissions(session: SessionDep) -> list[PermissionRead]:
    return await identity_service.list_permissions(session=session)


@router.post("/permissions", status_code=status.HTTP_201_CREATED)
async def create_permission(data: PermissionCreate, session: SessionDep) -> PermissionRead:
    with _http_errors():
        return await identity_service.create_permission(session=session, data=data)


@router.delete("/permissions/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_permission(name: str, session: SessionDep) -> None:
    with _http_errors():
        await identity_service.delete_permission(session=session, name=name)
