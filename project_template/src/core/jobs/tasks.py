"""`@task` and `@periodic`: a module's background work, run by the worker with retries and dead letters.

    # modules/orders/tasks/confirmation.py
    from src.core.jobs import task

    @task
    async def send_confirmation(order_id: int) -> None:
        ...

    await send_confirmation.kiq(order_id=42)   # queued; a worker runs `orders.send_confirmation`

Arguments travel as JSON: pass ids and plain values, not ORM objects.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

import stamina

from src.core.context import current_conversation_id
from src.core.db import database
from src.core.jobs import metrics
from src.core.jobs.models import DeadLetter
from src.core.jobs.registry import TaskSpec, add_task, module_of
from src.core.logging import get_logger

P = ParamSpec("P")
R = TypeVar("R")

log = get_logger(__name__)


class Retry:
    """How often and how patiently a task is retried (the `jobs` settings; the runtime sets them)."""

    attempts = 5
    backoff = 0.5
    backoff_max = 30.0


async def run_with_retries(name: str, func: Callable[..., Awaitable[Any]], args: Any, kwargs: Any) -> Any:
    """Run one task: retried with exponential backoff; after the last attempt, a dead letter.

    A cancelled run (the worker stops) is not caught: the broker was not told it finished,
    so the message goes to another worker.
    """
    label = metrics.labels(name)
    metrics.STARTED.labels(*label).inc()
    started = time.perf_counter()
    attempts = 0
    try:
        async for attempt in stamina.retry_context(
            on=Exception, attempts=Retry.attempts, wait_initial=Retry.backoff, wait_max=Retry.backoff_max
        ):
            with attempt:
                attempts = attempt.num
                if attempts > 1:
                    metrics.RETRIED.labels(*label).inc()
                try:
                    result = await func(*args, **kwargs)
                except Exception:
                    metrics.FAILED.labels(*label).inc()
                    raise
    except Exception as exc:
        await dead_letter(name, args, kwargs, exc, attempts)
        return None
    finally:
        metrics.DURATION.labels(*label).observe(time.perf_counter() - started)
    metrics.SUCCEEDED.labels(*label).inc()
    return result


async def dead_letter(name: str, args: Any, kwargs: Any, exc: Exception, attempts: int) -> None:
    """Keep the failed run in `core_dead_letters`, count it and log it (`scripts/replay_events.py` resends it)."""
    event_id = kwargs.get("event_id") if isinstance(kwargs, dict) else None
    error = "".join(traceback.format_exception_only(exc)).strip()
    async with database.sessionmaker() as session, session.begin():
        session.add(
            DeadLetter(
                task_name=name,
                args=list(args),
                kwargs=dict(kwargs),
                event_id=event_id,
                conversation_id=current_conversation_id(),
                error=error[:4000],
                attempts=attempts,
            )
        )
    metrics.DEAD_LETTERED.labels(*metrics.labels(name)).inc()
    log.error("task dead-lettered", task=name, attempts=attempts, error=error, event_id=event_id)


class JobTask(Generic[P, R]):
    """A declared task: `await t.kiq(...)` queues it; `await t(...)` runs it here and now (tests)."""

    def __init__(self, func: Callable[P, Awaitable[R]], name: str) -> None:
        self.func = func
        self.name = name

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self.func(*args, **kwargs)

    async def kiq(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue one run on the broker (the memory broker runs it before returning)."""
        from src.core.jobs.runtime import jobs

        await jobs.send(self.name, args, kwargs)


def _declare(func: Callable[P, Awaitable[R]], module: str | None, schedule: list[dict[str, Any]]) -> JobTask[P, R]:
    owner = module_of(func.__module__, module)
    name = f"{owner}.{func.__name__}"

    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_with_retries(name, func, args, kwargs)

    add_task(TaskSpec(name, owner, run, f"{func.__module__}.{func.__qualname__}", schedule))
    return JobTask(func, name)


@overload
def task(func: Callable[P, Awaitable[R]], /) -> JobTask[P, R]: ...
@overload
def task(*, module: str | None = None) -> Callable[[Callable[P, Awaitable[R]]], JobTask[P, R]]: ...
def task(
    func: Callable[P, Awaitable[R]] | None = None, /, *, module: str | None = None
) -> JobTask[P, R] | Callable[[Callable[P, Awaitable[R]]], JobTask[P, R]]:
    """Declare a background task named `<module>.<function>`, queued on its module's queue."""
    if func is not None:
        return _declare(func, module, [])
    return lambda f: _declare(f, module, [])


def periodic(
    *, cron: str | None = None, every: int | None = None, module: str | None = None
) -> Callable[[Callable[[], Awaitable[R]]], JobTask[[], R]]:
    """Declare a task the scheduler queues on a cron line (UTC) or every `every` seconds.

    One `taskiq scheduler` process queues it once per period, whatever the number of workers.
    """
    if (cron is None) == (every is None):
        raise ValueError("periodic: give exactly one of cron='*/5 * * * *' or every=<seconds>")
    schedule: dict[str, Any] = {"cron": cron} if cron is not None else {"interval": every}
    return lambda f: _declare(f, module, [schedule])
