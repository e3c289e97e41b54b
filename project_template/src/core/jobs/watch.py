"""The worker's watch over its Redis streams: queue depth, and messages a dead worker left behind.

taskiq-redis hands a message that a worker took and never acknowledged (it died) to another
worker, once it has been idle `jobs.redeliver_after` seconds, but only when a read brought
something new on that stream. On a stream with no new traffic, this watch sends a message that
does nothing (`core.wake`), so the abandoned one is taken over there and then.
"""

from __future__ import annotations

import asyncio
from typing import Any

from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker

from src.core.jobs import metrics
from src.core.jobs.registry import TaskSpec, add_task
from src.core.jobs.runtime import Jobs, queue_name
from src.core.logging import get_logger

log = get_logger(__name__)
WAKE = "core.wake"


async def _wake() -> None:
    """Nothing: its arrival makes the reading worker take over abandoned messages."""


add_task(TaskSpec(WAKE, "core", _wake, f"{__name__}._wake"))


async def watch_queues(jobs: Jobs, every: float = 5.0) -> None:
    """Every `every` seconds: `jobs_queue_depth{module}` (waiting + taken, unacknowledged), and wake-ups."""
    broker = jobs.broker
    if jobs.settings.broker != "redis" or broker is None:
        return
    from redis.asyncio import Redis

    while True:
        try:
            async with Redis(connection_pool=getattr(broker, "connection_pool", None)) as redis:
                for module in sorted({"core", *jobs.modules}):
                    await _watch(jobs, broker, redis, module)
        except Exception as exc:  # Redis away: the gauges keep their last value; the worker's probes tell
            log.debug("queues not watched", error=type(exc).__name__)
        await asyncio.sleep(every)


async def _watch(jobs: Jobs, broker: AsyncBroker, redis: Any, module: str) -> None:
    from redis.exceptions import ResponseError

    stream, group = queue_name(jobs.settings, module, jobs.modules), jobs.settings.queue_prefix
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no stream yet: nothing was ever queued there
        groups = []
    ours: dict[str, Any] = next((g for g in groups if g.get("name") in (group, group.encode())), {})
    waiting, taken = int(ours.get("lag") or 0), int(ours.get("pending") or 0)
    metrics.QUEUE_DEPTH.labels(module).set(waiting + taken)
    if not taken or waiting:
        return  # nothing abandoned, or new messages are on their way (their read takes it over)
    (oldest,) = await redis.xpending_range(stream, group, min="-", max="+", count=1)
    if oldest["time_since_delivered"] >= jobs.settings.redeliver_after * 1000:
        log.info("waking a stream with an abandoned message", stream=stream, message_id=oldest["message_id"])
        await AsyncKicker(WAKE, broker, {"queue_name": stream}).kiq()
