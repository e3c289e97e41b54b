"""Enums of the auth module."""

from enum import StrEnum


class BuiltinRole(StrEnum):
    """Roles the application relies on; `scripts/create_admin.py` creates `admin`."""

    ADMIN = "admin"


__all__ = ["BuiltinRole"]
