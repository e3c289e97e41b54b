"""The core tables of jobs and events: outbox, inbox and dead letters (history: src/core/migrations/versions/)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from src.core.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxEvent(Base):
    """An event written in the publisher's transaction; the relay sends it after the commit."""

    __tablename__ = "core_outbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the event's id
    event_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # The relay's query: unsent rows, oldest first.
    __table_args__ = (Index("ix_core_outbox_unsent", "sent_at", "created_at"),)


class InboxEntry(Base):
    """An event a handler has processed, written in the handler's transaction: a redelivery finds it and stops."""

    __tablename__ = "core_inbox"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handler: Mapped[str] = mapped_column(String(200), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeadLetter(Base):
    """A task or handler that failed its last attempt; `scripts/replay_events.py` sends it again."""

    __tablename__ = "core_dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(String(200), index=True)
    args: Mapped[list[Any]] = mapped_column(JSON)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_id: Mapped[str | None] = mapped_column(String(36))
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
