"""Services of the auth module: the only part other modules may import.

from modules.auth.services import identity_service
user = await identity_service.find_user(session=session, username="alice")
"""

from modules.auth.services.identity_service import (
    IdentityConflictError,
    IdentityNotFoundError,
    IdentityService,
    LockoutError,
    UnknownNameError,
    identity_service,
)
from modules.auth.services.login_throttle import LoginThrottledError
from modules.auth.services.session_service import (
    InvalidCredentialsError,
    InvalidRefreshTokenError,
    SessionService,
    session_service,
)

__all__ = [
    "IdentityConflictError",
    "IdentityNotFoundError",
    "IdentityService",
    "InvalidCredentialsError",
    "InvalidRefreshTokenError",
    "LockoutError",
    "LoginThrottledError",
    "SessionService",
    "UnknownNameError",
    "identity_service",
    "session_service",
]
