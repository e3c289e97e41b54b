"""The outbox relay: moves committed events to the broker, one message per subscribed handler.

Runs as a loop in the API and in every worker. On PostgreSQL, `FOR UPDATE SKIP LOCKED`
lets several relays work at once without two of them sending the same row; on SQLite
(development, one process) a plain select. A row is marked sent only after the broker
took its messages: a crash in between sends it again, and the handlers' inbox drops the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from src.core.db import database
from src.core.jobs import metrics
from src.core.jobs.models import OutboxEvent, utcnow
from src.core.logging import get_logger

log = get_logger(__name__)

# Set after a commit that published: the relay of this process wakes at once instead of at its next poll.
_wake = asyncio.Event()


def _on_commit(session: Session) -> None:
    _wake.set()


def wake_relay_after_commit(session: AsyncSession) -> None:
    if not sa_event.contains(session.sync_session, "after_commit", _on_commit):
        sa_event.listen(session.sync_session, "after_commit", _on_commit, once=True)


async def relay_once(limit: int = 100) -> int:
    """Send up to `limit` unsent events, oldest first; return how many rows were sent."""
    from src.core.jobs.runtime import jobs

    stmt = select(OutboxEvent).where(OutboxEvent.sent_at.is_(None)).order_by(OutboxEvent.created_at).limit(limit)
    async with database.sessionmaker() as session, session.begin():
        if database.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = (await session.scalars(stmt)).all()
        for row in rows:
            for name in jobs.handlers(row.event_type):
                delivery = {"event_id": row.id, "event_type": row.event_type, "payload": row.payload}
                await jobs.send(name, kwargs=delivery, conversation_id=row.conversation_id)
            row.sent_at = utcnow()
    metrics.OUTBOX_RELAYED.inc(len(rows))
    return len(rows)


async def outbox_lag() -> float:
    """Seconds since the oldest unsent event was written (0: none waiting)."""
    async with database.sessionmaker() as session:
        oldest: datetime | None = await session.scalar(
            select(func.min(OutboxEvent.created_at)).where(OutboxEvent.sent_at.is_(None))
        )
    return max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0


async def relay_forever(interval: float, batch: int) -> None:
    """Relay until cancelled: at once after a local publish, else every `interval` seconds."""
    while True:
        try:
            while await relay_once(batch) == batch:
                pass  # a full batch: more are waiting
            metrics.OUTBOX_LAG.set(await outbox_lag())
        except Exception as exc:  # database or broker away: log, wait, try again
            log.warning("outbox relay failed; retrying", error=f"{type(exc).__name__}: {exc}")
        _wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_wake.wait(), timeout=interval)
