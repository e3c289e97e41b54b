"""Login throttling as clients at different addresses see it: per (username, address) and per address."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from modules.auth.models import AuthLoginFailure
from modules.auth.services.login_throttle import client_key
from modules.auth.tests.conftest import PASSWORD, MakeUser
from src.core.auth_settings import RbacSettings
from src.core.config import Settings
from src.core.db import database

# The module, not the `session_service` instance that the package exports under the same name.
session_module = importlib.import_module("modules.auth.services.session_service")
LOGIN = "/api/v1/auth/login"
ATTACKER, USER_HOME, PROXY = "203.0.113.7", "198.51.100.20", "10.0.0.10"
ClientAt = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


class Clock:
    """The time the login service sees; tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(session_module, "_now", lambda: fake.now)
    return fake


@pytest.fixture
def client_at(app: FastAPI) -> ClientAt:
    """`async with client_at("203.0.113.7") as http:` an HTTP client whose requests come from that address."""

    @asynccontextmanager
    async def make(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http

    return make


@pytest.fixture
def rbac(settings: Settings) -> RbacSettings:
    return settings.auth.rbac


async def login(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post(LOGIN, data={"username": username, "password": password})


async def rows() -> int:
    async with database.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(AuthLoginFailure)) or 0


async def test_an_attacker_elsewhere_cannot_lock_the_user_out(
    client_at: ClientAt, make_user: MakeUser, rbac: RbacSettings
) -> None:
    await make_user("admin")
    async with client_at(ATTACKER) as attacker, client_at(USER_HOME) as user:
        for _ in range(rbac.max_failed_logins):
            assert (await login(attacker, "admin", "wrong-guess")).status_code == 401
        refused = await login(attacker, "admin")
        assert refused.status_code == 429, "the attacker's address is throttled for admin, even with the password"
        assert int(refused.headers["Retry-After"]) == rbac.lockout_base_seconds
        assert (await login(user, "admin")).status_code == 200, "the real admin, elsewhere, is not locked out"
        assert (await login(attacker, "someone-else", "wrong-guess")).status_code == 401


async def test_one_address_spraying_usernames_is_throttled(
    client_at: ClientAt, make_user: MakeUser, rbac: RbacSettings
) -> None:
    await make_user("victim")
    async with client_at(ATTACKER) as attacker, client_at(USER_HOME) as user:
        for n in range(rbac.max_failed_logins_per_client):
            assert (await login(attacker, f"guess-{n}", "password1")).status_code == 401
        assert (await login(attacker, "guess-next", "password1")).status_code == 429
        assert (await login(attacker, "victim")).status_code == 429, "every username, from that address"
        assert (await login(user, "victim")).status_code == 200, "other addresses are not affected"


async def test_addresses_of_one_ipv6_64_count_as_one_client(client_at: ClientAt, rbac: RbacSettings) -> None:
    for n in range(rbac.max_failed_logins):
        async with client_at(f"2001:db8:1:2::{n + 1:x}") as http:
            assert (await login(http, "admin", "wrong-guess")).status_code == 401
    async with client_at("2001:db8:1:2:ffff::1") as http:
        assert (await login(http, "admin", "wrong-guess")).status_code == 429
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limits(
    app: FastAPI, make_user: MakeUser, rbac: RbacSettings
) -> None:
    """What `uvicorn --forwarded-allow-ips=<proxy>` does: the proxy's X-Forwarded-For, and only the proxy's."""
    await make_user("admin")
    # uvicorn types ASGI apps more narrowly than FastAPI and httpx; at run time they are the same protocol.
    proxied: Any = ProxyHeadersMiddleware(app, trusted_hosts=PROXY)  # type: ignore[arg-type]

    def via(peer: str, forwarded_for: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=proxied, client=(peer, 40000))
        headers = {"X-Forwarded-For": forwarded_for}
        return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)

    async with via(PROXY, ATTACKER) as attacker, via(PROXY, f"{ATTACKER}, {USER_HOME}") as user:
        for _ in range(rbac.max_failed_logins):
            assert (await login(attacker, "admin", "wrong-guess")).status_code == 401
        assert (await login(attacker, "admin")).status_code == 429
        assert (await login(user, "admin")).status_code == 200, "the right-most untrusted entry is the client"
    async with via(ATTACKER, "198.51.100.99") as forged:
        assert (await login(forged, "admin")).status_code == 429, "a header from an untrusted peer is ignored"


async def test_locks_start_short_and_double(
    client_at: ClientAt, make_user: MakeUser, rbac: RbacSettings, clock: Clock
) -> None:
    await make_user("nina")
    async with client_at(ATTACKER) as http:
        for _ in range(rbac.max_failed_logins):
            assert (await login(http, "nina", "wrong-guess")).status_code == 401
        waits = []
        for _ in range(4):
            refused = await login(http, "nina", "wrong-guess")
            assert refused.status_code == 429
            waits.append(int(refused.headers["Retry-After"]))
            clock.advance(waits[-1])
            assert (await login(http, "nina", "wrong-guess")).status_code == 401, "allowed once the lock ends"
        base = rbac.lockout_base_seconds
        assert waits == [min(base * 2**n, rbac.lockout_seconds) for n in range(4)]
        clock.advance(rbac.lockout_seconds)
        assert (await login(http, "nina")).status_code == 200
        assert (await login(http, "nina", "wrong-guess")).status_code == 401, "a success starts the count over"


@pytest.mark.commits  # concurrent requests: each on its own connection, as in production
async def test_a_burst_of_concurrent_guesses_is_counted(client_at: ClientAt, rbac: RbacSettings) -> None:
    async with client_at(ATTACKER) as http, asyncio.timeout(60):  # never hangs
        results = await asyncio.gather(*(login(http, "admin", f"guess-{n}") for n in range(3 * rbac.max_failed_logins)))
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {401, 429}, codes
    assert codes.count(401) <= rbac.max_failed_logins, "no more guesses than the limit get a password check"


async def test_old_attempt_rows_are_pruned(client_at: ClientAt, rbac: RbacSettings, clock: Clock) -> None:
    sprayers = 40
    for n in range(sprayers):
        async with client_at(f"192.0.2.{n + 1}") as http:
            assert (await login(http, uuid.uuid4().hex, "password1")).status_code == 401
    assert await rows() == 2 * sprayers, "one row per (username, address) and one per address"
    clock.advance(rbac.failure_window_seconds + rbac.lockout_seconds)
    async with client_at(ATTACKER) as http:
        assert (await login(http, "later", "password1")).status_code == 401
    assert await rows() == 2, "the stale rows went when the next attempt was written"
