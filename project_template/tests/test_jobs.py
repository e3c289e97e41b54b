"""Jobs and events on the memory broker: outbox, relay, inbox, retries, dead letters, replay, conversation ID."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text
from taskiq.schedule_sources import LabelScheduleSource

from src.core import module_loader
from src.core.config import PROJECT_ROOT
from src.core.context import CONVERSATION_ID
from src.core.db import database
from src.core.http_client import http_client
from src.core.jobs import JobsError, jobs, publish
from src.core.jobs.dead_letters import pending, replay
from src.core.jobs.events import EVENT_TYPES
from src.core.jobs.models import DeadLetter, InboxEntry, OutboxEvent
from src.core.jobs.registry import SUBSCRIPTIONS, TASKS
from src.core.jobs.relay import relay_once
from src.core.module_loader import load_modules
from tests import jobs_probes
from tests.jobs_probes import ProbeHappened, call_partner, effects


@pytest.fixture(scope="session")
async def probe_table() -> None:
    await jobs_probes.ensure_effects_table()


@pytest.fixture
async def jobs_app(probe_table: None, app: FastAPI) -> FastAPI:
    return app


async def publish_committed(note: str, conversation: str | None = None) -> ProbeHappened:
    event = ProbeHappened(note=note)
    token = CONVERSATION_ID.set(conversation)
    try:
        async with database.sessionmaker() as session, session.begin():
            publish(session, event)
    finally:
        CONVERSATION_ID.reset(token)
    return event


def counted(name: str, task: str) -> float:
    return REGISTRY.get_sample_value(name, {"module": "probe", "task": task}) or 0.0


async def test_committed_event_is_handled_once(jobs_app: FastAPI) -> None:
    event = await publish_committed("hello")
    assert await effects(event.event_id) == 0, "nothing runs before the relay sends it"
    assert await relay_once() == 1
    assert await effects(event.event_id) == 1
    assert await relay_once() == 0, "a sent row is not sent again"
    async with database.sessionmaker() as session:
        inbox = await session.get(InboxEntry, (event.event_id, "probe.record_probe"))
        outbox = await session.get(OutboxEvent, event.event_id)
    assert inbox is not None
    assert outbox is not None
    assert outbox.sent_at is not None


async def test_rolled_back_transaction_sends_nothing(jobs_app: FastAPI) -> None:
    event = ProbeHappened(note="never")
    async with database.sessionmaker() as session:
        publish(session, event)
        await session.flush()
        await session.rollback()
    assert await relay_once() == 0
    assert await effects(event.event_id) == 0


async def test_redelivered_event_acts_once(jobs_app: FastAPI) -> None:
    event = await publish_committed("twice")
    await relay_once()
    before = counted("jobs_duplicates_skipped_total", "probe.record_probe")
    # The broker delivers the same message again (a worker died before acknowledging it).
    payload = event.model_dump(mode="json")
    delivery = {"event_id": event.event_id, "event_type": event.event_type, "payload": payload}
    await jobs.send("probe.record_probe", kwargs=delivery)
    assert await effects(event.event_id) == 1
    assert counted("jobs_duplicates_skipped_total", "probe.record_probe") == before + 1


async def test_failing_handler_goes_to_dead_letters_and_replays(
    jobs_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = await publish_committed("fail", conversation="conv-dead-letter")
    before = counted("jobs_dead_lettered_total", "probe.record_probe")
    with structlog.testing.capture_logs() as logs:
        await relay_once()
    assert await effects(event.event_id) == 0, "every failed attempt was rolled back"
    letters = await pending(task_name="probe.record_probe")
    assert [letter.event_id for letter in letters] == [event.event_id]
    letter = letters[0]
    assert letter.attempts == jobs.settings.max_attempts == 3
    assert "the probe handler fails on purpose" in letter.error
    assert letter.conversation_id == "conv-dead-letter"
    assert counted("jobs_dead_lettered_total", "probe.record_probe") == before + 1
    assert counted("jobs_retried_total", "probe.record_probe") >= 2
    assert any(line["event"] == "task dead-lettered" and line["event_id"] == event.event_id for line in logs)

    # Fixed (here: the handler is told the note is fine), the replay runs it once and marks the letter.
    real = ProbeHappened.model_validate

    def fixed(payload: object) -> ProbeHappened:
        return real({**payload, "note": "fixed"} if isinstance(payload, dict) else payload)

    monkeypatch.setattr(ProbeHappened, "model_validate", fixed)
    assert [done.id for done in await replay([letter.id])] == [letter.id]
    assert await effects(event.event_id) == 1
    assert await pending(task_name="probe.record_probe") == []
    async with database.sessionmaker() as session:
        replayed = await session.scalar(select(func.count()).where(DeadLetter.replayed_at.is_not(None)))
    assert replayed == 1


async def test_task_carries_conversation_id_to_logs_and_http_calls(jobs_app: FastAPI) -> None:
    seen: list[httpx.Request] = []

    def partner(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    await http_client.start(jobs_app.state.settings.http, transport=httpx.MockTransport(partner))
    token = CONVERSATION_ID.set("conv-from-request")
    try:
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            await call_partner.kiq("hi")
    finally:
        CONVERSATION_ID.reset(token)
    assert [json.loads(r.content) for r in seen] == [{"greeting": "hi"}]
    assert seen[0].headers["x-conversation-id"] == "conv-from-request"
    lines = [line for line in logs if line["event"] == "calling partner"]
    assert lines
    assert lines[0]["conversation_id"] == "conv-from-request"
    assert CONVERSATION_ID.get(None) is None, "the task's ID does not leak into the caller"


async def test_event_handler_logs_carry_the_publishers_conversation_id(jobs_app: FastAPI) -> None:
    event = await publish_committed("traced", conversation="conv-publisher")
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await relay_once()
    assert await effects(event.event_id) == 1
    handled = [line for line in logs if line["event"] == "probe handled"]
    assert handled
    assert handled[0]["conversation_id"] == "conv-publisher"


async def test_periodic_tasks_are_scheduled_as_declared(jobs_app: FastAPI) -> None:
    assert jobs.broker is not None
    source = LabelScheduleSource(jobs.broker)  # what `taskiq scheduler src.worker:scheduler` reads
    await source.startup()
    schedules = {s.task_name: s for s in await source.get_schedules()}
    assert schedules["probe.tick"].interval == 60
    assert schedules["probe.tick"].labels["queue_name"] == f"{jobs.settings.queue_prefix}:core"
    assert "probe.record_probe" not in schedules, "only periodic tasks are scheduled"


@pytest.mark.commits
async def test_replay_script_lists_dead_letters(jobs_app: FastAPI) -> None:
    event = await publish_committed("fail")
    await relay_once()
    (letter,) = await pending(task_name="probe.record_probe")
    script = [sys.executable, str(PROJECT_ROOT / "scripts" / "replay_events.py")]
    listed = subprocess.run([*script, "--list"], capture_output=True, text=True, check=False)  # noqa: ASYNC221, S603
    assert listed.returncode == 0, listed.stderr
    assert f"{letter.id}: probe.record_probe failed" in listed.stdout
    assert "RuntimeError: the probe handler fails on purpose" in listed.stdout
    # The script loads the project's modules; this probe is not one of them, so it is not replayed.
    unknown = subprocess.run([*script, "--id", str(letter.id)], capture_output=True, text=True, check=False)  # noqa: ASYNC221, S603
    assert unknown.returncode == 1
    assert "unknown task 'probe.record_probe'" in unknown.stdout
    assert letter.event_id == event.event_id


ROUTER = "from fastapi import APIRouter\n\nrouter = APIRouter()\n"

# Three modules: `shop` publishes OrderPlaced; `stock` and `billing` each handle it, and `billing`
# also has a periodic task. With `billing` switched off, only `stock` may see the event.
SHOP_EVENTS = "from src.core.jobs import Event\n\nclass OrderPlaced(Event):\n    order_id: int\n"
HANDLER = """
from sqlalchemy import text
from modules.shop.events import OrderPlaced
from src.core.jobs import handles, periodic, task

@handles(OrderPlaced)
async def on_order(event, session):
    await session.execute(text("INSERT INTO probe_effects VALUES (:id, '{0}')"), {{"id": event.event_id}})

@task
async def chore() -> None: ...

@periodic(every=60)
async def hourly() -> None: ...
"""


@pytest.fixture
def three_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The modules above in a temporary modules/; what they declared is forgotten afterwards."""
    pkg = tmp_path / "modules"
    files = {"__init__.py": "", "shop/__init__.py": ROUTER, "shop/events/__init__.py": SHOP_EVENTS}
    for name in ("stock", "billing"):
        files |= {
            f"{name}/__init__.py": ROUTER,
            f"{name}/tasks/__init__.py": "",
            f"{name}/tasks/work.py": HANDLER.format(name),
        }
    for path, source in files.items():
        (pkg / path).parent.mkdir(parents=True, exist_ok=True)
        (pkg / path).write_text(source)
    monkeypatch.setattr(module_loader, "MODULES_DIR", pkg)
    monkeypatch.syspath_prepend(str(tmp_path))
    for key in [k for k in sys.modules if k == "modules" or k.startswith("modules.")]:
        monkeypatch.delitem(sys.modules, key)
    tables: list[dict[str, Any]] = [TASKS, SUBSCRIPTIONS, EVENT_TYPES]
    declared = [(table, dict(table)) for table in tables]
    yield
    for table, before in declared:
        table.clear()
        table.update(before)


async def handled_by(event_id: str) -> list[str]:
    async with database.sessionmaker() as session:
        notes = await session.scalars(text("SELECT note FROM probe_effects WHERE event_id = :id"), {"id": event_id})
    return sorted(notes)


async def test_a_switched_off_module_registers_no_task_and_misses_its_events(
    jobs_app: FastAPI, three_modules: None
) -> None:
    settings = jobs_app.state.settings
    on = [m.name for m in load_modules(settings)]  # an earlier app of this process had `billing` on
    assert on == ["billing", "shop", "stock"]
    off = settings.model_copy(update={"modules": settings.modules.model_copy(update={"disabled": ["billing"]})})
    # What the worker does at import (src/worker.py), and what the scheduler reads from its broker.
    broker = jobs.configure(off.jobs, [m.name for m in load_modules(off)])
    assert not [name for name in broker.get_all_tasks() if name.startswith("billing.")]
    assert {"stock.on_order", "stock.chore", "stock.hourly"} <= set(broker.get_all_tasks())
    source = LabelScheduleSource(broker)
    await source.startup()
    assert "billing.hourly" not in {s.task_name for s in await source.get_schedules()}
    with pytest.raises(JobsError, match=r"unknown task 'billing\.chore'"):
        await jobs.send("billing.chore")

    order_placed = importlib.import_module("modules.shop.events").OrderPlaced
    before = await pending()
    async with database.sessionmaker() as session, session.begin():
        publish(session, event := order_placed(order_id=7))
    assert await relay_once() == 1
    assert await handled_by(event.event_id) == ["stock"], "the enabled handler ran, the switched-off one did not"
    assert await pending() == before, "nothing dead-lettered for the switched-off handler"
