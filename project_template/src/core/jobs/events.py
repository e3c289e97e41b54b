"""Events between modules: typed, written to the outbox in the publisher's transaction, handled once.

# modules/users/events/__init__.py  (public: other modules may import it)
class UserRegistered(Event):
    user_id: int

# modules/users/services/...: in the same transaction as the write
publish(session, UserRegistered(user_id=user.id))
await session.commit()          # rolled back: no event; committed: delivered, even after a crash

# modules/billing/tasks/...: a handler, in its own transaction, with the inbox row that makes it run once
@handles(UserRegistered)
async def open_account(event: UserRegistered, session: AsyncSession) -> None:
    ...
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from src.core.context import current_conversation_id
from src.core.db import database
from src.core.jobs import metrics
from src.core.jobs.models import InboxEntry, OutboxEvent, utcnow
from src.core.jobs.registry import JobsError, TaskSpec, add_task, module_of, subscribe
from src.core.jobs.tasks import run_with_retries
from src.core.logging import get_logger

log = get_logger(__name__)

E = TypeVar("E", bound="Event")
Handler = Callable[[E, AsyncSession], Awaitable[None]]

EVENT_TYPES: dict[str, type[Event]] = {}


class Event(BaseModel):
    """Base of every event: an id (the inbox key) and when it happened; subclasses add the facts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # `<module>.<ClassName>`, set for each subclass: the name stored in the outbox and subscribed to.
    event_type: ClassVar[str]

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.event_type = f"{module_of(cls.__module__, getattr(cls, '__event_module__', None))}.{cls.__name__}"
        EVENT_TYPES[cls.event_type] = cls


def publish(session: AsyncSession, event: Event) -> None:
    """Add the event to the outbox in `session`'s transaction; it is sent only if that transaction commits."""
    session.add(
        OutboxEvent(
            id=event.event_id,
            event_type=event.event_type,
            payload=event.model_dump(mode="json"),
            conversation_id=current_conversation_id(),
        )
    )
    from src.core.jobs.relay import wake_relay_after_commit

    wake_relay_after_commit(session)


async def _record(session: AsyncSession, event_id: str, handler: str) -> bool:
    """Insert the inbox row; False when this handler already processed the event (a redelivery)."""
    values = {"event_id": event_id, "handler": handler, "processed_at": utcnow()}
    dialect = session.bind.dialect.name if session.bind is not None else database.dialect
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(InboxEntry).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(InboxEntry).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - other databases: a duplicate fails the insert and the run is retried, then skipped
        stmt = insert(InboxEntry).values(values)
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 1))


def handles(event_class: type[E], *, module: str | None = None) -> Callable[[Handler[E]], Handler[E]]:
    """Subscribe a handler to an event type; it runs in a worker as the task `<module>.<function>`."""

    def declare(handler: Handler[E]) -> Handler[E]:
        if not (isinstance(event_class, type) and issubclass(event_class, Event)):
            raise JobsError(f"@handles needs an Event subclass, not {event_class!r}")
        owner = module_of(handler.__module__, module)
        name = f"{owner}.{handler.__name__}"

        async def deliver(*, event_id: str, event_type: str, payload: dict[str, Any]) -> None:
            event = event_class.model_validate(payload)
            async with database.sessionmaker() as session, session.begin():
                if not await _record(session, event_id, name):
                    metrics.SKIPPED.labels(*metrics.labels(name)).inc()
                    log.info("event already handled", handler=name, event_id=event_id, event_type=event_type)
                    return
                await handler(event, session)

        async def run(*args: Any, **kwargs: Any) -> Any:
            return await run_with_retries(name, deliver, args, kwargs)

        add_task(TaskSpec(name, owner, run, f"{handler.__module__}.{handler.__qualname__}"))
        subscribe(event_class.event_type, name)
        return handler

    return declare
