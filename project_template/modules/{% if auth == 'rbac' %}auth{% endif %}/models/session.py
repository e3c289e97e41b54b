"""Refresh tokens (stored hashed, rotated, grouped in families) and login throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from src.core.db import Base


class AuthRefreshToken(Base):
    """One issued refresh token. Using it marks it used and issues the next of its family;
    presenting a used one again means it leaked, so the whole family is revoked."""

    __tablename__ = "auth_refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token: a database leak does not hand out valid refresh tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuthLoginFailure(Base):
    """Counted login attempts of one client: for one username (scope "user") or for any (scope "client").

    Unknown usernames are counted like real ones, so throttling reveals nothing. A row is stale
    once `expires_at` has passed; later logins delete stale rows a few at a time, so the table
    holds at most the rows written in the last window, whatever anonymous callers send.
    """

    __tablename__ = "auth_login_failures"
    __table_args__ = (UniqueConstraint("scope", "client", "username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    # An IPv4 address or an IPv6 /64 (one host usually owns a whole /64).
    client: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(150))  # "" for scope "client"
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
