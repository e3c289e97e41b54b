"""Pydantic schemas of the auth module (public: other modules may use them with its services)."""

from modules.auth.schemas.identity import (
    PasswordStr,
    PermissionCreate,
    PermissionRead,
    RoleCreate,
    RoleRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from modules.auth.schemas.tokens import Me, RefreshRequest, TokenPair

__all__ = [
    "Me",
    "PasswordStr",
    "PermissionCreate",
    "PermissionRead",
    "RefreshRequest",
    "RoleCreate",
    "RoleRead",
    "TokenPair",
    "UserCreate",
    "UserRead",
    "UserUpdate",
]
