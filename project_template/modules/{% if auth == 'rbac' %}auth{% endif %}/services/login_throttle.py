"""Login throttling per (username, client) and per client across usernames (OWASP authentication cheat sheet).

Keying on the username alone would let anyone lock a user out; keying on the pair means an attacker
only ever locks their own address. The per-client count stops one address from spraying many usernames.
Each attempt is counted *before* the password is checked, in one conditional UPDATE per row, so a burst of
concurrent guesses cannot all slip through before the first failure is written; a success is then forgiven.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, and_, case, delete, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from modules.auth.models import AuthLoginFailure
from src.core.auth_settings import RbacSettings
from src.core.logging import get_logger

log = get_logger(__name__)

USER, CLIENT = "user", "client"
# Stale rows deleted per inserted row: more than one, so stale rows cannot pile up, yet bounded work.
PRUNE_BATCH = 100
UNKNOWN_CLIENT = "unknown"
Row = AuthLoginFailure


class LoginThrottledError(Exception):
    """Too many failed logins for this username from this client, or from this client overall (429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


def client_key(host: str | None) -> str:
    """The address attempts are counted for: IPv4 as is, IPv6 by its /64 (one host usually owns a whole /64)."""
    if not host:
        return UNKNOWN_CLIENT
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # not an IP (a Unix socket path, a test transport's name)
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


def lock_seconds(*, config: RbacSettings, failures: int, limit: int) -> int | None:
    """How long the next attempt waits after `failures` counted attempts: none below `limit`, then doubling."""
    if failures < limit:
        return None
    return min(config.lockout_seconds, config.lockout_base_seconds * (1 << min(failures - limit, 30)))


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every value here was stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _key(scope: str, client: str, username: str) -> ColumnElement[bool]:
    return and_(Row.scope == scope, Row.client == client, Row.username == username)


def _at(value: datetime) -> ColumnElement[datetime]:
    return literal(value, DateTime(timezone=True))


class LoginThrottle:
    """Counts login attempts and refuses them while a lock holds."""

    async def admit(
        self, *, session: AsyncSession, config: RbacSettings, client: str, username: str, now: datetime
    ) -> None:
        """Count one attempt of `username` from `client` (committed), or raise LoginThrottledError while locked."""
        for _ in range(3):
            try:
                inserted = await self._count(session=session, config=config, client=client, username=username, now=now)
            except IntegrityError:
                # A concurrent first attempt inserted the same row: count again, on that row.
                await session.rollback()
                continue
            if inserted:
                await self._prune(session=session, now=now)
            return
        # Still racing after three tries: refuse rather than let an attempt through uncounted.
        raise LoginThrottledError(1)

    async def forgive(self, *, session: AsyncSession, client: str, username: str) -> None:
        """A successful login: forget this username's count from `client`, take the attempt off the client's count."""
        await session.execute(delete(Row).where(_key(USER, client, username)))
        await session.execute(
            update(Row)
            .where(_key(CLIENT, client, ""), Row.failures > 0)
            .values(failures=Row.failures - 1, locked_until=None)
            .execution_options(synchronize_session=False)
        )

    async def _count(
        self, *, session: AsyncSession, config: RbacSettings, client: str, username: str, now: datetime
    ) -> bool:
        window_end = now + timedelta(seconds=config.failure_window_seconds)
        inserted = False
        for scope, name, limit in (
            (USER, username, config.max_failed_logins),
            (CLIENT, "", config.max_failed_logins_per_client),
        ):
            stale = Row.expires_at <= _at(now)
            # Only an unlocked row is counted; on PostgreSQL a concurrent attempt waits for this row's lock
            # and then sees the lock this transaction sets.
            counted = await session.execute(
                update(Row)
                .where(_key(scope, client, name), or_(Row.locked_until.is_(None), Row.locked_until <= _at(now)))
                .values(
                    failures=case((stale, 1), else_=Row.failures + 1),
                    expires_at=case((stale, _at(window_end)), else_=Row.expires_at),
                )
                .returning(Row.failures, Row.expires_at)
                .execution_options(synchronize_session=False)
            )
            row = counted.first()
            if row is not None:
                failures, expires_at = row.failures, _aware(row.expires_at)
            else:
                locked = (await session.execute(select(Row.locked_until).where(_key(scope, client, name)))).first()
                if locked is not None and locked.locked_until is not None:
                    await session.rollback()
                    retry = math.ceil((_aware(locked.locked_until) - now).total_seconds())
                    log.info("login refused: throttled", scope=scope, client=client, username=username)
                    raise LoginThrottledError(max(1, retry))
                session.add(Row(scope=scope, client=client, username=name, failures=1, expires_at=window_end))
                await session.flush()
                failures, expires_at, inserted = 1, window_end, True
            wait = lock_seconds(config=config, failures=failures, limit=limit)
            if wait is not None:
                until = now + timedelta(seconds=wait)
                await session.execute(
                    update(Row)
                    .where(_key(scope, client, name))
                    .values(locked_until=until, expires_at=max(expires_at, until))
                    .execution_options(synchronize_session=False)
                )
                if failures == limit:
                    log.warning("login throttled", scope=scope, client=client, username=username, failures=failures)
        await session.commit()
        return inserted

    async def _prune(self, *, session: AsyncSession, now: datetime) -> None:
        # SKIP LOCKED (PostgreSQL; ignored by SQLite): never wait for, or deadlock with, a login counting a row.
        stale = (
            select(Row.id)
            .where(Row.expires_at <= _at(now))
            .order_by(Row.expires_at)
            .limit(PRUNE_BATCH)
            .with_for_update(skip_locked=True)
        )
        await session.execute(delete(Row).where(Row.id.in_(stale)).execution_options(synchronize_session=False))
        await session.commit()


login_throttle = LoginThrottle()
