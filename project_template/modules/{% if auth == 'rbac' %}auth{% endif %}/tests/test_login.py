"""Logging in, refreshing and logging out, as a client of /api/v1/auth sees it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jwt
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select, update

from modules.auth.models import AuthRefreshToken, AuthUser
from modules.auth.services import passwords
from modules.auth.tests.conftest import PASSWORD, MakeUser
from src.core.config import Settings
from src.core.db import database

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(LOGIN, data={"username": username, "password": password})


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_login_then_me(client: httpx.AsyncClient, make_user: MakeUser, settings: Settings) -> None:
    user = await make_user("alice", roles=("editor",))
    response = await login(client, "alice")
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == settings.auth.rbac.access_token_ttl
    assert tokens["refresh_token"]
    me = await client.get("/api/v1/auth/me", headers=bearer(tokens))
    assert me.json() == {"id": str(user.id), "username": "alice", "roles": ["editor"], "permissions": []}
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert {"iss", "aud", "exp", "iat", "sub"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == settings.auth.rbac.access_token_ttl


async def test_username_is_case_insensitive(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("Bob")
    assert (await login(client, "BOB")).status_code == 200


async def test_wrong_password_and_unknown_user_look_the_same(
    client: httpx.AsyncClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user("carol")
    burned: list[str] = []
    real_burn = passwords.burn_verify

    async def spy(password: str) -> None:
        burned.append(password)
        await real_burn(password)

    monkeypatch.setattr(passwords, "burn_verify", spy)
    wrong = await login(client, "carol", "not-her-password")
    unknown = await login(client, "nobody-here", "not-her-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"] == "Bearer"
    assert burned == ["not-her-password"], "an unknown username still pays for one password verification"


async def test_inactive_user_cannot_log_in(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("dave")
    async with database.sessionmaker() as session:
        await session.execute(update(AuthUser).where(AuthUser.id == user.id).values(is_active=False))
        await session.commit()
    assert (await login(client, "dave")).status_code == 401


@pytest.mark.parametrize("username", ["erin", "no-such-user"])
async def test_repeated_failures_are_throttled(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, username: str
) -> None:
    await make_user("erin")
    for _ in range(settings.auth.rbac.max_failed_logins):
        assert (await login(client, username, "guess-guess")).status_code == 401
    throttled = await login(client, username, "correct-horse")
    assert throttled.status_code == 429, "even the right password waits: this username is locked for this address"
    assert 0 < int(throttled.headers["Retry-After"]) <= settings.auth.rbac.lockout_seconds
    assert (await login(client, "other-user", "guess-guess")).status_code == 401, "other names are not locked"


async def test_a_success_resets_the_failure_count(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    await make_user("frank")
    for _ in range(2):
        for _ in range(settings.auth.rbac.max_failed_logins - 1):
            assert (await login(client, "frank", "guess-guess")).status_code == 401
        assert (await login(client, "frank")).status_code == 200


async def test_refresh_rotates_and_a_reused_token_revokes_the_login(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("grace")
    first = (await login(client, "grace")).json()
    second = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/v1/auth/me", headers=bearer(rotated))).status_code == 200

    reused = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert "already used" in reused.json()["detail"]
    after_theft = await client.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})
    assert after_theft.status_code == 401, "reuse revokes the whole family, including the newest token"
    assert after_theft.json()["detail"] == "this login was revoked: log in again", "it was never used"

    other_login = (await login(client, "grace")).json()
    assert (await client.post(REFRESH, json={"refresh_token": other_login["refresh_token"]})).status_code == 200


async def test_refresh_token_cannot_be_used_as_an_access_token(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("heidi")
    tokens = (await login(client, "heidi")).json()
    response = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert response.status_code == 401


async def test_unknown_and_expired_refresh_tokens(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    assert (await client.post(REFRESH, json={"refresh_token": "made-up"})).status_code == 401
    await make_user("ivan")
    tokens = (await login(client, "ivan")).json()
    async with database.sessionmaker() as session:
        await session.execute(update(AuthRefreshToken).values(expires_at=AuthRefreshToken.created_at))
        await session.commit()
    assert (await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})).status_code == 401


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("judy")
    tokens = (await login(client, "judy")).json()
    assert (
        await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 204
    after = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert after.status_code == 401
    assert after.json()["detail"] == "this login was revoked: log in again"


async def test_token_responses_are_never_cached(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("kim")
    tokens = await login(client, "kim")
    refreshed = await client.post(REFRESH, json={"refresh_token": tokens.json()["refresh_token"]})
    for response in (tokens, refreshed):
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"


async def test_refresh_picks_up_new_roles(
    client: httpx.AsyncClient, make_user: MakeUser, role_with_permissions: Any
) -> None:
    user = await make_user("ken")
    tokens = (await login(client, "ken")).json()
    await role_with_permissions("billing", "invoices:read", "invoices:write")
    admin = await make_user("root", roles=("admin",))
    admin_tokens = (await login(client, admin.username)).json()
    granted = await client.patch(
        f"/api/v1/auth/users/{user.id}", json={"roles": ["billing"]}, headers=bearer(admin_tokens)
    )
    assert granted.status_code == 200, granted.text
    refreshed = (await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})).json()
    me = (await client.get("/api/v1/auth/me", headers=bearer(refreshed))).json()
    assert me["roles"] == ["billing"]
    assert me["permissions"] == ["invoices:read", "invoices:write"]


async def test_an_outdated_hash_is_upgraded_at_login(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("lena")
    weaker = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=512),)).hash("correct-horse")
    async with database.sessionmaker() as session:
        await session.execute(update(AuthUser).where(AuthUser.id == user.id).values(password_hash=weaker))
        await session.commit()
    assert (await login(client, "lena")).status_code == 200
    async with database.sessionmaker() as session:
        stored = await session.scalar(select(AuthUser.password_hash).where(AuthUser.id == user.id))
    assert stored is not None
    assert stored != weaker
    assert stored.startswith("$argon2id$")
    assert "m=1024" in stored, "re-hashed with the current parameters"
    assert (await login(client, "lena")).status_code == 200


async def test_login_form_is_validated(client: httpx.AsyncClient) -> None:
    assert (await client.post(LOGIN, data={"username": "x"})).status_code == 422
    assert (await client.post(LOGIN, json={"username": "x", "password": "y"})).status_code == 422


@pytest.mark.commits  # concurrent requests: each on its own connection, as in production
async def test_two_concurrent_refreshes_with_one_token_let_exactly_one_through(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("mallory")
    token = (await login(client, "mallory")).json()["refresh_token"]
    async with asyncio.timeout(30):  # never hangs
        results = await asyncio.gather(*(client.post(REFRESH, json={"refresh_token": token}) for _ in range(2)))
    assert sorted(r.status_code for r in results) == [200, 401]
