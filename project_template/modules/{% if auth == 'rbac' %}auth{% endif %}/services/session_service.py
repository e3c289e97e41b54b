"""Login, refresh-token rotation and logout. Raises domain errors; the routes turn them into HTTP."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modules.auth.models import AuthRefreshToken, AuthUser
from modules.auth.schemas import TokenPair
from modules.auth.services import passwords
from modules.auth.services.login_throttle import client_key, login_throttle
from src.core.auth_settings import RbacSettings
from src.core.logging import get_logger
from src.core.security.rbac import create_access_token

log = get_logger(__name__)


class InvalidCredentialsError(Exception):
    """Wrong username or password, or an inactive account: deliberately the same error (401)."""


class InvalidRefreshTokenError(Exception):
    """Unknown, expired, revoked or reused refresh token (401)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every value here was stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionService:
    """Turns credentials into tokens and refresh tokens into new ones."""

    async def login(
        self, *, session: AsyncSession, config: RbacSettings, username: str, password: str, client: str | None
    ) -> TokenPair:
        """Tokens for valid credentials; throttles per (username, client address) and per client address."""
        key = username.strip().lower()[:150]
        address = client_key(client)
        now = _now()
        # Counted before the password check, for unknown usernames too: refusals and costs reveal nothing.
        await login_throttle.admit(session=session, config=config, client=address, username=key, now=now)
        user = await session.scalar(select(AuthUser).where(AuthUser.username == key))
        if user is None:
            await passwords.burn_verify(password)
            valid, new_hash = False, None
        else:
            valid, new_hash = await passwords.verify_and_update(password, user.password_hash)
        if user is None or not valid or not user.is_active:
            log.info("login failed", username=key, client=address)
            raise InvalidCredentialsError("incorrect username or password")
        await login_throttle.forgive(session=session, client=address, username=key)
        if new_hash is not None:
            user.password_hash = new_hash
        user.last_login_at = now
        log.info("login", user_id=user.id, rehashed=new_hash is not None)
        return await self._issue(session=session, config=config, user=user, family=uuid.uuid4().hex, now=now)

    async def refresh(self, *, session: AsyncSession, config: RbacSettings, refresh_token: str) -> TokenPair:
        """Rotate: the presented token is spent and a new pair issued; a spent token revokes its family."""
        now = _now()
        row = await session.scalar(
            select(AuthRefreshToken).where(AuthRefreshToken.token_hash == _digest(refresh_token))
        )
        if row is None:
            raise InvalidRefreshTokenError("unknown refresh token")
        # One conditional UPDATE: of two concurrent uses of one token, exactly one wins.
        spent = await session.execute(
            update(AuthRefreshToken)
            .where(AuthRefreshToken.id == row.id, AuthRefreshToken.used_at.is_(None))
            .where(AuthRefreshToken.revoked_at.is_(None))
            .values(used_at=now)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            if row.revoked_at is not None:  # logged out, or revoked when a token of this login was reused
                raise InvalidRefreshTokenError("this login was revoked: log in again")
            await self._revoke_family(session=session, family=row.family, now=now)
            await session.commit()
            log.warning("refresh token reused: login revoked", user_id=row.user_id, family=row.family)
            raise InvalidRefreshTokenError("refresh token already used: this login was revoked, log in again")
        user = await session.get(AuthUser, row.user_id)
        if _aware(row.expires_at) <= now or user is None or not user.is_active:
            await session.commit()
            raise InvalidRefreshTokenError("refresh token expired or account disabled")
        return await self._issue(session=session, config=config, user=user, family=row.family, now=now)

    async def logout(self, *, session: AsyncSession, refresh_token: str) -> None:
        """Revoke the family of `refresh_token` (this login on every device it was rotated to)."""
        row = await session.scalar(
            select(AuthRefreshToken).where(AuthRefreshToken.token_hash == _digest(refresh_token))
        )
        if row is not None:
            await self._revoke_family(session=session, family=row.family, now=_now())
            await session.commit()

    async def _issue(
        self, *, session: AsyncSession, config: RbacSettings, user: AuthUser, family: str, now: datetime
    ) -> TokenPair:
        await session.refresh(user, ["roles"])
        refresh_token = secrets.token_urlsafe(32)
        session.add(
            AuthRefreshToken(
                user_id=user.id,
                token_hash=_digest(refresh_token),
                family=family,
                expires_at=now + timedelta(seconds=config.refresh_token_ttl),
            )
        )
        access_token = create_access_token(
            config=config,
            subject=str(user.id),
            username=user.username,
            roles=user.role_names,
            permissions=user.permission_names,
            now=now.timestamp(),
        )
        await session.commit()
        return TokenPair(
            access_token=access_token,
            expires_in=config.access_token_ttl,
            refresh_token=refresh_token,
            refresh_expires_in=config.refresh_token_ttl,
        )

    async def _revoke_family(self, *, session: AsyncSession, family: str, now: datetime) -> None:
        await session.execute(
            update(AuthRefreshToken)
            .where(AuthRefreshToken.family == family, AuthRefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


session_service = SessionService()
