"""A task and an event handler for the jobs tests, declared outside modules/ (module `probe`).

The handler's effect is a row in `probe_effects` (made by `ensure_effects_table`), written in
the handler's transaction with its inbox row: a worker process in the fault tests imports this
file too (`taskiq worker src.worker:broker tests.jobs_probes`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.core.context import current_conversation_id
from src.core.db import database
from src.core.http_client import http_client
from src.core.jobs import Event, handles, periodic, task
from src.core.logging import get_logger

log = get_logger("tests.jobs_probes")
# A handler whose note is "hang" writes this marker on its first run and then waits to be killed;
# one whose note is "slow" writes it and takes two seconds.
HANG_MARKER = os.environ.get("PROBE_HANG_MARKER", "")
# A handler whose note is "fail" fails until this file exists (the fix, before a replay).
FIXED_MARKER = os.environ.get("PROBE_FIXED_MARKER", "")
# Where `call_partner` sends its request (tests point the HTTP client at a mock transport).
PARTNER_URL = "http://partner.test/hello"


class ProbeHappened(Event):
    __event_module__ = "probe"
    note: str


async def ensure_effects_table() -> None:
    async with database.engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE IF NOT EXISTS probe_effects (event_id VARCHAR(36) NOT NULL, note VARCHAR(50) NOT NULL)")
        )


async def effects(event_id: str) -> int:
    async with database.sessionmaker() as session:
        found = await session.scalar(text("SELECT count(*) FROM probe_effects WHERE event_id = :id"), {"id": event_id})
    return int(found or 0)


@handles(ProbeHappened, module="probe")
async def record_probe(event: ProbeHappened, session: AsyncSession) -> None:
    log.info("probe handled", note=event.note)
    await session.execute(
        text("INSERT INTO probe_effects (event_id, note) VALUES (:id, :note)"),
        {"id": event.event_id, "note": event.note},
    )
    if event.note == "fail" and not (FIXED_MARKER and os.path.exists(FIXED_MARKER)):  # noqa: ASYNC240 - a tiny file
        raise RuntimeError("the probe handler fails on purpose")
    if event.note == "slow" and HANG_MARKER:
        Path(HANG_MARKER).write_text(str(os.getpid()))  # noqa: ASYNC240 - started; the test stops the worker now
        await asyncio.sleep(2)
    if event.note == "hang" and HANG_MARKER and not os.path.exists(HANG_MARKER):  # noqa: ASYNC240 - a tiny file
        Path(HANG_MARKER).write_text(str(os.getpid()))  # noqa: ASYNC240
        await asyncio.sleep(600)  # killed here by the test, before the transaction commits


@task(module="probe")
async def call_partner(greeting: str) -> str | None:
    """Logs, then calls a partner through the central HTTP client: both carry the conversation ID."""
    log.info("calling partner", greeting=greeting)
    response = await http_client.request("POST", PARTNER_URL, json={"greeting": greeting})
    response.raise_for_status()
    return current_conversation_id()


@periodic(every=60, module="probe")
async def tick() -> None:
    """Queued by the scheduler every minute."""
    log.info("tick")
