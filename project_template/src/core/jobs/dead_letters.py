"""Dead letters: listing them and sending them again (`scripts/replay_events.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from src.core.db import database
from src.core.jobs.models import DeadLetter, utcnow
from src.core.jobs.runtime import jobs


async def pending(ids: Sequence[int] | None = None, task_name: str | None = None) -> list[DeadLetter]:
    """Dead letters not replayed yet, oldest first (only `ids` / only `task_name` when given)."""
    stmt = select(DeadLetter).where(DeadLetter.replayed_at.is_(None)).order_by(DeadLetter.id)
    if ids:
        stmt = stmt.where(DeadLetter.id.in_(ids))
    if task_name:
        stmt = stmt.where(DeadLetter.task_name == task_name)
    async with database.sessionmaker() as session:
        return list((await session.scalars(stmt)).all())


async def replay(ids: Sequence[int] | None = None, task_name: str | None = None) -> list[DeadLetter]:
    """Queue each pending dead letter again, with its arguments and conversation ID; mark it replayed.

    A replay that fails again comes back as a new dead letter. An event's handler runs only if its
    inbox has no row for the event, so replaying what already succeeded changes nothing.
    """
    letters = await pending(ids, task_name)
    for letter in letters:
        await jobs.send(letter.task_name, letter.args, letter.kwargs, conversation_id=letter.conversation_id)
        async with database.sessionmaker() as session, session.begin():
            stored = await session.get(DeadLetter, letter.id)
            if stored is not None:
                stored.replayed_at = utcnow()
    return letters
