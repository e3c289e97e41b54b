"""Log in, refresh, log out, and who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from modules.auth.schemas import Me, RefreshRequest, TokenPair
from modules.auth.services import (
    InvalidCredentialsError,
    InvalidRefreshTokenError,
    LoginThrottledError,
    session_service,
)
from src.core.auth_settings import RbacSettings
from src.core.db import SessionDep
from src.core.security import CurrentUser

router = APIRouter()


def rbac_settings(request: Request) -> RbacSettings:
    settings: RbacSettings = request.app.state.settings.auth.rbac
    return settings


Config = Annotated[RbacSettings, Depends(rbac_settings)]


def no_store(response: Response) -> None:
    """RFC 6749 5.1: a response carrying tokens must not be cached by the client or any proxy."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


@router.post(
    "/login",
    dependencies=[Depends(no_store)],
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Throttled"}},
)
async def login(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, config: Config
) -> TokenPair:
    """OAuth2 password flow: form fields `username` and `password`."""
    # The peer address; behind a proxy, uvicorn's --forwarded-allow-ips makes it the real client's.
    client = request.client.host if request.client else None
    try:
        return await session_service.login(
            session=session, config=config, username=form.username, password=form.password, client=client
        )
    except InvalidCredentialsError as exc:
        raise _unauthorized(str(exc)) from None
    except LoginThrottledError as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, detail=str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None


@router.post(
    "/refresh",
    dependencies=[Depends(no_store)],
    responses={401: {"description": "Unknown, expired or reused refresh token"}},
)
async def refresh(body: RefreshRequest, session: SessionDep, config: Config) -> TokenPair:
    """A new token pair for a refresh token, which is spent; presenting it again revokes the login."""
    try:
        return await session_service.refresh(session=session, config=config, refresh_token=body.refresh_token)
    except InvalidRefreshTokenError as exc:
        raise _unauthorized(str(exc)) from None


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, session: SessionDep) -> None:
    """Revoke this login's refresh tokens; access tokens expire on their own (short-lived)."""
    await session_service.logout(session=session, refresh_token=body.refresh_token)


@router.get("/me")
async def me(user: CurrentUser) -> Me:
    """The caller, as the access token describes them."""
    return Me(id=user.id, username=user.username, roles=sorted(user.roles), permissions=sorted(user.permissions))
