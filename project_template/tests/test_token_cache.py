"""Verified tokens are cached: never past their expiry, never past a key change, never without bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from src.core.security import CurrentUser, Principal
from src.core.security.tokens import VerifiedTokens
from tests.auth_helpers import sign, valid_claims


@pytest.fixture
def whoami(app: FastAPI) -> str:
    @app.get("/test/whoami")
    async def whoami(user: CurrentUser) -> dict[str, str]:
        return {"id": user.id}

    return "/test/whoami"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """`clock(3600)`: the cache and PyJWT both see the time an hour ahead."""

    def advance(seconds: float) -> None:
        real_time = time.time

        class Later:  # what PyJWT reads the time from
            @staticmethod
            def now(tz: tzinfo | None = None) -> datetime:
                return datetime.now(tz) + timedelta(seconds=seconds)

        monkeypatch.setattr(time, "time", lambda: real_time() + seconds)
        monkeypatch.setattr(jwt.api_jwt, "datetime", Later)

    return advance


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def short_lived(seconds: int) -> str:
    claims = valid_claims()
    return sign({**claims, "exp": int(time.time()) + seconds})


async def test_a_token_is_checked_once_then_served_from_the_cache(
    app: FastAPI, client: httpx.AsyncClient, whoami: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = app.state.auth_backend
    checks: list[str] = []
    authenticate = backend.authenticate

    async def counted(token: str) -> Principal:
        checks.append(token)
        principal: Principal = await authenticate(token)
        return principal

    monkeypatch.setattr(backend, "authenticate", counted)
    token = short_lived(600)
    for _ in range(3):
        assert (await client.get(whoami, headers=bearer(token))).status_code == 200
    assert len(checks) == 1


async def test_a_cached_token_is_refused_once_it_expires(
    client: httpx.AsyncClient, whoami: str, clock: Callable[[float], None]
) -> None:
    token = short_lived(60)
    assert (await client.get(whoami, headers=bearer(token))).status_code == 200
    clock(3600)
    response = await client.get(whoami, headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"


async def test_a_refused_token_is_not_cached(app: FastAPI, client: httpx.AsyncClient, whoami: str) -> None:
    claims = {**valid_claims(), "exp": int(time.time()) + 600}
    forged = jwt.encode(claims, "a-different-secret-of-at-least-32-bytes", algorithm="HS256")
    for _ in range(2):
        assert (await client.get(whoami, headers=bearer(forged))).status_code == 401
    assert len(app.state.auth_backend.tokens) == 0


def principal(exp: float) -> Principal:
    return Principal(id="u", username="u", claims={"exp": exp})


def test_the_cache_is_bounded_and_keeps_the_newest() -> None:
    cache = VerifiedTokens(max_entries=100)
    later = time.time() + 600
    for n in range(1000):
        cache.put(f"token-{n}", principal(later))
        assert len(cache) <= 100
    assert cache.get("token-999") is not None
    assert cache.get("token-0") is None


def test_a_token_without_expiry_or_already_expired_is_not_kept() -> None:
    cache = VerifiedTokens()
    cache.put("expired", principal(time.time() - 1))
    cache.put("no-exp", Principal(id="u", username="u", claims={}))
    weird: dict[str, Any] = {"exp": "tomorrow"}
    cache.put("weird", Principal(id="u", username="u", claims=weird))
    assert len(cache) == 0


def test_cached_claims_are_read_only() -> None:
    # Every request with the token shares them: one route must not change what the next one sees.
    cache = VerifiedTokens()
    stored = cache.put("token", principal(time.time() + 600))
    with pytest.raises(TypeError):
        stored.claims["exp"] = 0  # type: ignore[index]
    assert cache.get("token") is stored
