"""Delivery under faults, with real worker processes (`taskiq worker src.worker:broker`) on Redis and RabbitMQ.

- a worker killed (SIGKILL, its own PID) in the middle of a handler: the run is taken again after a
  restart and its effect happens once;
- a process that dies right after committing an event: the event is delivered once a worker runs;
- a handler that always fails: dead letter, metric on the worker's /metrics, then a replay that works;
- two relays at once on PostgreSQL: each event sent once.

Marked `faults` (`pytest -m faults` runs them alone); each worker uses queues of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from src.core.config import PROJECT_ROOT, Settings
from src.core.db import database
from src.core.jobs import jobs, publish
from src.core.jobs.dead_letters import replay
from src.core.jobs.models import DeadLetter, InboxEntry
from src.core.jobs.relay import relay_once
from src.core.migrations import migration_modules
from tests import jobs_probes
from tests.fixtures import delete_rows
from tests.jobs_probes import ProbeHappened, effects
from tests.live_server import free_port

pytestmark = [pytest.mark.faults, pytest.mark.commits]
REDELIVER_AFTER = 2.0  # seconds before a message a dead worker held goes to another


@pytest.fixture
async def committed(settings: Settings) -> AsyncIterator[None]:
    """Real commits (workers are other processes); every table emptied afterwards."""
    await jobs_probes.ensure_effects_table()
    try:
        yield
    finally:
        await delete_rows(migration_modules())


async def publish_committed(note: str) -> ProbeHappened:
    event = ProbeHappened(note=note)
    async with database.sessionmaker() as session, session.begin():
        publish(session, event)
    return event


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


class Worker:
    """`taskiq worker` in its own process, with the probes imported and /health on a port of its own."""

    def __init__(self, broker: str, prefix: str, log: Path, **env: str) -> None:
        self.port = free_port()
        self.log = log
        self.env = {
            **os.environ,
            "CONFIG_ENV": "test",
            "JOBS_BROKER": broker,
            "APP_JOBS__QUEUE_PREFIX": prefix,
            "APP_JOBS__RELAY": "true",
            "APP_JOBS__RELAY_INTERVAL": "0.1",
            "APP_JOBS__REDELIVER_AFTER": str(REDELIVER_AFTER),
            "APP_JOBS__WORKER_PORT": str(self.port),
            "APP_LOGGING__LEVEL": "INFO",
            **env,
        }
        command = [sys.executable, "-m", "taskiq", "worker", "src.worker:broker", "tests.jobs_probes"]
        command += ["--workers", "1", "--no-configure-logging", "--wait-tasks-timeout", "5"]
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=out)  # noqa: S603
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited with {self.process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url("/health/ready"), timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the worker never became ready:\n{log.read_text()[-3000:]}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def metric_lines(self) -> list[str]:
        return httpx.get(self.url("/metrics"), timeout=2).text.splitlines()

    def metric(self, name: str, task: str) -> float:
        for line in self.metric_lines():
            if line.startswith(f'{name}{{module="probe",task="{task}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def worker(broker: str, prefix: str, log: Path, **env: str) -> Iterator[Worker]:
    running = Worker(broker, prefix, log, **env)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def prefix() -> Iterator[str]:
    """Queues of this test alone; its Redis streams are deleted afterwards."""
    name = f"faults_{uuid.uuid4().hex[:8]}"
    yield name
    if os.environ.get("REDIS_URL"):
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        keys = list(client.scan_iter(f"{name}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.mark.redis
async def test_worker_killed_mid_job_reruns_it_once(committed: None, prefix: str, tmp_path: Path) -> None:
    marker = tmp_path / "hanging"
    log = tmp_path / "worker.log"
    with worker("redis", prefix, log, PROBE_HANG_MARKER=str(marker)) as first:
        event = await publish_committed("hang")
        assert await eventually(lambda: asyncio.to_thread(marker.exists)), log.read_text()[-3000:]
        os.kill(int(marker.read_text()), signal.SIGKILL)  # the process running the handler, mid-transaction
        first.stop()
    killed_at = time.monotonic()
    assert await effects(event.event_id) == 0, "the killed run's transaction was rolled back"

    with worker("redis", prefix, log, PROBE_HANG_MARKER=str(marker)):
        # Nothing else is queued: the worker's watch wakes the stream once the message is abandoned.
        assert await eventually(lambda: _effects_are(event.event_id, 1)), log.read_text()[-3000:]
        assert time.monotonic() - killed_at >= REDELIVER_AFTER, "taken over only after redeliver_after"
        await asyncio.sleep(REDELIVER_AFTER + 0.5)  # nothing left over to be taken a third time
        assert await effects(event.event_id) == 1
    async with database.sessionmaker() as session:
        inbox = (await session.scalars(select(InboxEntry).where(InboxEntry.event_id == event.event_id))).all()
    assert [entry.handler for entry in inbox] == ["probe.record_probe"]


async def _effects_are(event_id: str, count: int) -> bool:
    return await effects(event_id) == count


@pytest.mark.redis
async def test_worker_stopped_mid_job_finishes_it_first(committed: None, prefix: str, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    log = tmp_path / "worker.log"
    with worker("redis", prefix, log, PROBE_HANG_MARKER=str(marker)) as running:
        event = await publish_committed("slow")
        assert await eventually(lambda: asyncio.to_thread(marker.exists)), log.read_text()[-3000:]
        assert running.metric("jobs_started_total", "probe.record_probe") == 1
        assert await asyncio.to_thread(running.stop) == 0, "SIGTERM: a clean exit"
    assert await effects(event.event_id) == 1, "the running job finished before the worker stopped"
    assert '"worker stopped"' in log.read_text()


@pytest.mark.redis
async def test_event_committed_before_a_crash_is_delivered_after_restart(
    committed: None, prefix: str, tmp_path: Path
) -> None:
    # A process publishes, commits and is killed before its relay can run (it would run at the next await).
    script = textwrap.dedent(
        """
        import asyncio, os, signal
        from src.core.config import get_settings
        from src.core.db import database
        from src.core.jobs import publish
        from tests.jobs_probes import ProbeHappened

        async def main() -> None:
            database.configure(get_settings().database)
            event = ProbeHappened(note="survivor")
            async with database.sessionmaker() as session, session.begin():
                publish(session, event)
            print(event.event_id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    env = {**os.environ, "CONFIG_ENV": "test", "JOBS_BROKER": "redis", "APP_JOBS__QUEUE_PREFIX": prefix}
    crashed = subprocess.run(  # noqa: ASYNC221, S603 - a short child process
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    event_id = crashed.stdout.strip()
    assert await effects(event_id) == 0
    log = tmp_path / "worker.log"
    with worker("redis", prefix, log):
        assert await eventually(lambda: _effects_are(event_id, 1)), log.read_text()[-3000:]


@pytest.mark.redis
async def test_always_failing_handler_is_dead_lettered_counted_and_replayed(
    committed: None, prefix: str, tmp_path: Path, settings: Settings
) -> None:
    fixed = tmp_path / "fixed"
    log = tmp_path / "worker.log"
    with worker("redis", prefix, log, PROBE_FIXED_MARKER=str(fixed)) as running:
        event = await publish_committed("fail")

        async def dead_lettered() -> bool:
            async with database.sessionmaker() as session:
                return await session.scalar(select(DeadLetter).where(DeadLetter.event_id == event.event_id)) is not None

        assert await eventually(dead_lettered), log.read_text()[-3000:]
        assert running.metric("jobs_dead_lettered_total", "probe.record_probe") == 1
        assert running.metric("jobs_failed_total", "probe.record_probe") == settings.jobs.max_attempts
        assert '"task dead-lettered"' in log.read_text()
        assert await effects(event.event_id) == 0

        # The cause is fixed; the replay (scripts/replay_events.py does the same) goes through Redis to the worker.
        fixed.write_text("fixed")
        redis_jobs = settings.jobs.model_copy(update={"broker": "redis", "queue_prefix": prefix})
        await jobs.start(redis_jobs, [])
        try:
            assert len(await replay(task_name="probe.record_probe")) == 1
        finally:
            await jobs.stop()
        assert await eventually(lambda: _effects_are(event.event_id, 1)), log.read_text()[-3000:]
        assert running.metric("jobs_succeeded_total", "probe.record_probe") == 1
        lines = running.metric_lines()
        assert 'jobs_queue_depth{module="core"} 0.0' in lines, "nothing waits in the probes' queue"
        assert "jobs_outbox_lag_seconds 0.0" in lines, "nothing waits in the outbox"


@pytest.mark.postgres
async def test_two_relays_at_once_send_each_event_once(committed: None, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [ProbeHappened(note=f"n{i}") for i in range(120)]
    async with database.sessionmaker() as session, session.begin():
        for event in events:
            publish(session, event)
    sent: list[str] = []

    async def send(task_name: str, args: Any = (), kwargs: Any = None, **_: Any) -> None:
        await asyncio.sleep(0.001)  # a broker round trip: the other relay runs meanwhile
        sent.append(kwargs["event_id"])

    monkeypatch.setattr(jobs, "send", send)

    async def relay() -> int:
        total = 0
        while found := await relay_once(limit=10):
            total += found
        return total

    counts = await asyncio.gather(relay(), relay())
    assert sorted(sent) == sorted(event.event_id for event in events)
    assert all(count > 0 for count in counts), f"both relays worked: {counts}"


@pytest.mark.rabbitmq
async def test_rabbitmq_broker_delivers_events(committed: None, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with worker("rabbitmq", "faults_rabbitmq", log, RABBITMQ_URL=os.environ["RABBITMQ_URL"]):
        event = await publish_committed("rabbit")
        assert await eventually(lambda: _effects_are(event.event_id, 1)), log.read_text()[-3000:]
