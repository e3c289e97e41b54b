"""Users, roles and permissions as the API shows and accepts them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from src.core.schemas import PatchField

# Argon2 hashes any length, but an unbounded input is a free CPU-burning lever.
PasswordStr = Annotated[str, Field(min_length=8, max_length=256)]
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
PermissionName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:*-]+$")]


def _unique(names: list[str]) -> list[str]:
    return sorted(set(names))


class UserCreate(BaseModel):
    username: Username
    password: PasswordStr
    email: str | None = Field(default=None, max_length=320)
    roles: Annotated[list[RoleName], AfterValidator(_unique)] = Field(default_factory=list)


class UserUpdate(BaseModel):
    """Only the fields sent change; `email` alone may be set to null."""

    password: PasswordStr = PatchField()
    email: str | None = Field(default=None, max_length=320)
    is_active: bool = PatchField()
    roles: Annotated[list[RoleName], AfterValidator(_unique)] = PatchField()


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str | None
    is_active: bool
    roles: list[str] = Field(validation_alias="role_names")
    permissions: list[str] = Field(validation_alias="permission_names")
    created_at: datetime
    last_login_at: datetime | None


class PermissionCreate(BaseModel):
    name: PermissionName
    description: str = Field(default="", max_length=500)


class PermissionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    description: str


class RoleCreate(BaseModel):
    name: RoleName
    description: str = Field(default="", max_length=500)
    permissions: Annotated[list[PermissionName], AfterValidator(_unique)] = Field(default_factory=list)


class RoleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    description: str
    permissions: list[str] = Field(validation_alias="permission_names")
