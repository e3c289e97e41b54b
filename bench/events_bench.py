"""Events through the outbox, Redis and a worker: throughput, end-to-end latency, and the cost of publishing.

Run inside a generated project (it imports the project's `src` and its test probes), with Redis and,
for figures that mean something, PostgreSQL:

    cd my_api && DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench \\
        uv run python ../fastapi-enterprise/bench/events_bench.py [--redis-url redis://127.0.0.1:6379/0]

It migrates that database, starts one worker (`taskiq worker src.worker:broker tests.jobs_probes
--workers 1`), and publishes from this process, whose relay sends each event right after its commit
(as the API's does). Prints `name: value` lines:

- events_per_s: events published in one burst (50 per transaction), divided by the time until the last was handled
  (outbox -> relay -> Redis stream -> worker -> handler transaction with its inbox row);
- latency_p50_ms / latency_p99_ms: one event at a time, from the outbox row's `created_at` to the
  handler's inbox row's `processed_at`;
- publish_in_request_ratio: the mean time of a request that inserts a row and publishes an event in
  its transaction over that of the same request without the event, alternating in one run.

A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.getcwd())
os.environ.setdefault("CONFIG_ENV", "test")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--events", type=int, default=2000, help="events in the throughput burst")
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--requests", type=int, default=400, help="requests of each kind for the ratio")
    return parser.parse_args()


ARGS = parse()
PREFIX = f"bench_{uuid.uuid4().hex[:8]}"
os.environ.update(
    {"JOBS_BROKER": "redis", "REDIS_URL": ARGS.redis_url, "APP_JOBS__QUEUE_PREFIX": PREFIX, "APP_JOBS__RELAY": "true"}
)
os.environ.update({"APP_LOGGING__LEVEL": "WARNING", "APP_JOBS__RELAY_INTERVAL": "0.2", "APP_JOBS__WORKER_PORT": "0"})

import httpx  # noqa: E402
from fastapi import APIRouter  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from src.app import create_app  # noqa: E402
from src.core.config import get_settings  # noqa: E402
from src.core.db import SessionDep, database  # noqa: E402
from src.core.jobs import publish  # noqa: E402
from src.core.jobs.models import InboxEntry, OutboxEvent  # noqa: E402
from src.core.migrations import upgrade  # noqa: E402
from tests.jobs_probes import ProbeHappened, ensure_effects_table  # noqa: E402


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "taskiq", "worker", "src.worker:broker", "tests.jobs_probes"]
    command += ["--workers", "1", "--no-configure-logging", "--max-async-tasks", "100"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=os.environ, stdout=out, stderr=out)


async def handled(event_ids: list[str]) -> int:
    async with database.sessionmaker() as session:
        found = await session.scalar(select(func.count()).where(InboxEntry.event_id.in_(event_ids)))
    return int(found or 0)


async def wait_handled(event_ids: list[str], limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    chunks = [event_ids[i : i + 500] for i in range(0, len(event_ids), 500)]
    while time.monotonic() < deadline:
        if sum([await handled(chunk) for chunk in chunks]) >= len(event_ids):
            return
        await asyncio.sleep(0.02)
    raise SystemExit("the worker did not handle every event in time (see the worker log)")


async def publish_one(note: str) -> str:
    event = ProbeHappened(note=note)
    async with database.sessionmaker() as session, session.begin():
        publish(session, event)
    return event.event_id


async def throughput(n: int, per_transaction: int = 50) -> float:
    started = time.perf_counter()
    ids: list[str] = []
    while len(ids) < n:
        events = [ProbeHappened(note="burst") for _ in range(min(per_transaction, n - len(ids)))]
        async with database.sessionmaker() as session, session.begin():
            for event in events:
                publish(session, event)
        ids += [event.event_id for event in events]
    await wait_handled(ids)
    return n / (time.perf_counter() - started)


async def latencies(n: int) -> list[float]:
    ids = []
    for _ in range(n):
        ids.append(await publish_one("latency"))
        await wait_handled(ids[-1:])
    async with database.sessionmaker() as session:
        rows = await session.execute(
            select(OutboxEvent.created_at, InboxEntry.processed_at)
            .join(InboxEntry, InboxEntry.event_id == OutboxEvent.id)
            .where(OutboxEvent.id.in_(ids))
        )
        return [(done - created).total_seconds() * 1000 for created, done in rows]


def bench_routes() -> APIRouter:
    router = APIRouter(prefix="/bench")

    @router.post("/plain", status_code=204)
    async def plain(session: SessionDep) -> None:
        await session.execute(text("INSERT INTO probe_effects (event_id, note) VALUES (:id, 'plain')"), {"id": "-"})
        await session.commit()

    @router.post("/publish", status_code=204)
    async def with_event(session: SessionDep) -> None:
        await session.execute(text("INSERT INTO probe_effects (event_id, note) VALUES (:id, 'event')"), {"id": "-"})
        publish(session, ProbeHappened(note="request"))
        await session.commit()

    return router


async def request_ratio(client: httpx.AsyncClient, n: int) -> float:
    times: dict[str, list[float]] = {"plain": [], "publish": []}
    for i in range(n * 2):
        kind = "plain" if i % 2 == 0 else "publish"
        started = time.perf_counter()
        response = await client.post(f"/bench/{kind}")
        times[kind].append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.mean(times["publish"]) / statistics.mean(times["plain"])


async def main() -> None:
    settings = get_settings()
    database.configure(settings.database)
    await upgrade()
    await ensure_effects_table()
    log = Path(f"/tmp/{PREFIX}-worker.log")
    worker = start_worker(log)
    app = create_app(settings)
    app.include_router(bench_routes())
    try:
        async with app.router.lifespan_context(app):  # the broker and this process's relay
            await wait_handled([await publish_one("warm-up")], limit=120)
            for _ in range(50):
                await wait_handled([await publish_one("warm-up")])
            rate = await throughput(ARGS.events)
            lat = sorted(await latencies(ARGS.latency_events))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await request_ratio(client, 50)  # warm-up
                ratio = await request_ratio(client, ARGS.requests)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        import redis

        client = redis.Redis.from_url(ARGS.redis_url)
        keys = list(client.scan_iter(f"{PREFIX}:*"))
        if keys:
            client.delete(*keys)
    print(f"database: {database.dialect}")
    print(f"events_per_s: {rate:.0f}")
    print(f"latency_p50_ms: {lat[len(lat) // 2]:.1f}")
    print(f"latency_p99_ms: {lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.1f}")
    print(f"publish_in_request_ratio: {ratio:.2f}")


asyncio.run(main())
