"""Identity of RBAC mode: users, roles, permissions, login and refresh tokens; routes under /api/v1/auth.

Rendered only when the project uses `auth: rbac`. Core security
(`src.core.security`) validates the tokens this module issues without importing
it. Other modules use only `modules.auth.services` (and its schemas).
"""

from modules.auth.routes import router

__all__ = ["router"]
