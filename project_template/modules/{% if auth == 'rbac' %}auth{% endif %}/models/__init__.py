"""SQLAlchemy models of the auth module; its tables are all named `auth_*`.

Never import these from another module (use `modules.auth.services`), and no
other module's table may hold a ForeignKey to them: store a user id as a plain value.
"""

from modules.auth.models.identity import AuthPermission, AuthRole, AuthUser, role_permissions, user_roles
from modules.auth.models.session import AuthLoginFailure, AuthRefreshToken

__all__ = [
    "AuthLoginFailure",
    "AuthPermission",
    "AuthRefreshToken",
    "AuthRole",
    "AuthUser",
    "role_permissions",
    "user_roles",
]
