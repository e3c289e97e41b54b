"""What login and refresh return, and who `/me` is."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TokenPair(BaseModel):
    """OAuth2-compatible token response (`access_token`, `token_type`), plus a rotating refresh token."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105  (OAuth2's token type, not a secret)
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class Me(BaseModel):
    id: str
    username: str
    roles: list[str]
    permissions: list[str]
