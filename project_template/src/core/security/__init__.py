"""Authentication and authorization: one API for modules, whatever `auth.mode` is.

from src.core.security import CurrentUser, requires_role, requires_permission

@router.get("/me")
async def me(user: CurrentUser) -> dict[str, str]: ...

@router.delete("/{item_id}", status_code=204)
@requires_role("admin")
async def delete(item_id: int) -> None: ...

@router.post("/", dependencies=[Depends(requires_permission("orders:write"))])
async def create(...) -> ...: ...
"""

from src.core.security.dependencies import (
    CurrentUser,
    OptionalUser,
    Requirement,
    bearer_scheme,
    current_user,
    optional_user,
    requires_permission,
    requires_role,
)
from src.core.security.principal import AuthBackend, AuthError, AuthUnavailableError, InvalidTokenError, Principal

__all__ = [
    "AuthBackend",
    "AuthError",
    "AuthUnavailableError",
    "CurrentUser",
    "InvalidTokenError",
    "OptionalUser",
    "Principal",
    "Requirement",
    "bearer_scheme",
    "current_user",
    "optional_user",
    "requires_permission",
    "requires_role",
]
