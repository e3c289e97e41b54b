"""Route-level authorization: `CurrentUser`, `requires_role`, `requires_permission`.

The auth middleware has already validated the bearer token and stored the
outcome in `request.state`; these dependencies only read it, so they cost
microseconds and never touch the network. 401 when there is no valid token,
403 when the token is valid but lacks the role or permission.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from src.core.security.principal import AuthUnavailableError, Principal

F = TypeVar("F", bound=Callable[..., Any])

SCHEME_NAME = "BearerAuth"
# Marks routes where the token is optional; the OpenAPI hook in setup.py rewrites it
# to `[{}, {"BearerAuth": []}]`, OpenAPI's way of saying "anonymous, or with a token".
OPTIONAL_SCHEME_NAME = "BearerAuthOptional"


class BearerScheme(SecurityBase):
    """Declares the bearer scheme in OpenAPI so /docs can authorize; the token itself is read by the middleware."""

    def __init__(self, scheme_name: str = SCHEME_NAME) -> None:
        self.model = HTTPBearerModel(bearerFormat="JWT")
        self.scheme_name = scheme_name

    async def __call__(self, request: Request) -> None:
        return None


bearer_scheme = BearerScheme()
optional_bearer_scheme = BearerScheme(OPTIONAL_SCHEME_NAME)


def _unauthorized(detail: str, error: str | None) -> HTTPException:
    # RFC 6750: no error code when the request carried no credentials at all.
    challenge = "Bearer" if error is None else f'Bearer error="{error}", error_description="{detail}"'
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


def _principal_or_error(request: Request) -> Principal | None:
    """The principal the middleware stored; raises for a token that was sent but is unusable."""
    state = request.state
    failure = getattr(state, "auth_error", None)
    if isinstance(failure, AuthUnavailableError):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(failure), headers={"Retry-After": "5"})
    if failure is not None:
        raise _unauthorized(str(failure), "invalid_token")
    principal: Principal | None = getattr(state, "current_user", None)
    return principal


async def current_user(request: Request, _: Annotated[None, Security(bearer_scheme)]) -> Principal:
    """The signed-in principal; 401 without a valid bearer token."""
    principal = _principal_or_error(request)
    if principal is None:
        raise _unauthorized("Not authenticated", None)
    return principal


async def optional_user(request: Request, _: Annotated[None, Security(optional_bearer_scheme)]) -> Principal | None:
    """The signed-in principal, or None for anonymous calls; a bad token is still a 401."""
    return _principal_or_error(request)


CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]


class Requirement:
    """A role/permission check usable three ways.

    `Depends(requires_role("admin"))` (also in `dependencies=[...]` and `Annotated`),
    or `@requires_role("admin")` under the route decorator. FastAPI inspects the
    instance's own `__call__` attribute (the async check) and `__signature__`,
    while Python's call syntax uses the class's `__call__` (the decorator), so one
    object serves both without a thread-pool hop.
    """

    def __init__(self, *, roles: tuple[str, ...] = (), permissions: tuple[str, ...] = ()) -> None:
        if not roles and not permissions:
            raise ValueError("name at least one role or permission")
        self.roles = roles
        self.permissions = permissions
        self.__dict__["__call__"] = self.check
        # Resolved now: FastAPI would look names up in the globals of the caller, not of this module.
        self.__signature__ = inspect.signature(self.check, eval_str=True)

    def __repr__(self) -> str:
        return f"Requirement(roles={self.roles!r}, permissions={self.permissions!r})"

    async def check(self, principal: Annotated[Principal, Depends(current_user)]) -> Principal:
        """The principal, if it holds one of the roles and all the permissions; else 403."""
        if self.roles and not principal.has_role(*self.roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"requires role: {' or '.join(self.roles)}")
        if self.permissions and not principal.has_permissions(*self.permissions):
            missing = sorted(set(self.permissions) - principal.permissions)
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"requires permission: {', '.join(missing)}")
        return principal

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.decorate(args[0])
        # FastAPI resolved this instance as a dependency and calls it with the check's arguments.
        return self.check(*args, **kwargs)

    def decorate(self, endpoint: F) -> F:
        """Add this requirement as a hidden keyword-only dependency of `endpoint`."""
        try:
            signature = inspect.signature(endpoint, eval_str=True)
        except NameError:  # annotations only importable under TYPE_CHECKING: leave them to FastAPI
            signature = inspect.signature(endpoint)
        name = "_auth_requirement"
        while name in signature.parameters:
            name += "_"
        extra = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=Depends(self), annotation=Principal)
        params = list(signature.parameters.values())
        # Keyword-only parameters must follow positional ones and precede **kwargs.
        position = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
        params.insert(position, extra)

        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                kwargs.pop(name, None)
                return await endpoint(*args, **kwargs)

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(endpoint)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                kwargs.pop(name, None)
                return endpoint(*args, **kwargs)

            wrapper = sync_wrapper
        wrapper.__signature__ = signature.replace(parameters=params)
        return wrapper  # type: ignore[no-any-return]


def requires_role(*roles: str) -> Requirement:
    """Require at least one of `roles` (403 otherwise, 401 without a valid token)."""
    return Requirement(roles=roles)


def requires_permission(*permissions: str) -> Requirement:
    """Require every one of `permissions` (403 otherwise, 401 without a valid token)."""
    return Requirement(permissions=permissions)
