"""The broker, built from the `jobs` settings, with every declared task registered on it.

- `memory`: runs each task in the process that queues it, before `kiq()` returns (development, tests);
- `redis`: Redis streams with consumer groups (taskiq-redis); a message is acknowledged after its
  run, so a worker that dies mid-job leaves it to be taken again (`jobs.redeliver_after`);
- `rabbitmq`: durable queues with acknowledgements (taskiq-aio-pika).

Each module has its own queue (`<queue_prefix>:<module>`), so one module's backlog does not
hold back another's messages in the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Mapping, Sequence
from contextvars import Token
from typing import Any

from taskiq import AsyncBroker, InMemoryBroker, TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.kicker import AsyncKicker

from src.core.config import JobsSettings
from src.core.context import CONVERSATION_ID, current_conversation_id
from src.core.jobs import metrics
from src.core.jobs.registry import ON_ADD, TASKS, JobsError, TaskSpec, subscribers
from src.core.jobs.relay import relay_forever
from src.core.jobs.tasks import Retry
from src.core.logging import get_logger
from src.core.module_loader import module_names

log = get_logger(__name__)

CONVERSATION_LABEL = "conversation_id"


def queue_name(settings: JobsSettings, module: str, modules: Collection[str]) -> str:
    """`<prefix>:<module>` (RabbitMQ: `<prefix>.<module>`); tasks declared outside modules/ use `<prefix>:core`."""
    separator = "." if settings.broker == "rabbitmq" else ":"
    return f"{settings.queue_prefix}{separator}{module if module in modules else 'core'}"


class ConversationMiddleware(TaskiqMiddleware):
    """The conversation ID of whoever queued a task travels as a label and is bound while it runs.

    So a task's log lines carry it, and the central HTTP client sends it on.
    """

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        if not message.labels.get(CONVERSATION_LABEL):
            message.labels[CONVERSATION_LABEL] = current_conversation_id() or ""
        metrics.QUEUED.labels(*metrics.labels(message.task_name)).inc()
        return message

    def __init__(self) -> None:
        super().__init__()
        # Restored after each run: the memory broker runs tasks inside the caller's context.
        self._previous: dict[str, Token[Any]] = {}

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self._previous[message.task_id] = CONVERSATION_ID.set(message.labels.get(CONVERSATION_LABEL) or None)
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        token = self._previous.pop(message.task_id, None)
        if token is not None:
            with contextlib.suppress(ValueError):  # reset from another context: nothing to restore there
                CONVERSATION_ID.reset(token)


def build_broker(settings: JobsSettings, modules: list[str]) -> AsyncBroker:
    """A broker for these settings, reading the queues of `modules` (no task on it yet)."""
    queues = [queue_name(settings, name, modules) for name in sorted({"core", *modules})]
    broker: AsyncBroker
    if settings.broker == "memory":
        broker = InMemoryBroker(await_inplace=True)
    elif settings.broker == "redis":
        from taskiq_redis import RedisStreamBroker

        broker = RedisStreamBroker(
            settings.redis_url,
            queue_name=queues[0],
            consumer_group_name=settings.queue_prefix,
            additional_streams={name: ">" for name in queues[1:]},
            idle_timeout=int(settings.redeliver_after * 1000),
            unacknowledged_lock_timeout=5,
            xread_block=1000,
        )
    else:
        from taskiq_aio_pika import AioPikaBroker, Exchange, Queue

        broker = AioPikaBroker(
            settings.rabbitmq_url,
            exchange=Exchange(name=settings.queue_prefix),
            task_queues=[Queue(name=name) for name in queues],
        )
    broker.add_middlewares(ConversationMiddleware())
    return broker


def register(broker: AsyncBroker, settings: JobsSettings, modules: Collection[str], spec: TaskSpec) -> None:
    labels: dict[str, Any] = {"queue_name": queue_name(settings, spec.module, modules)}
    if spec.schedule:
        labels["schedule"] = spec.schedule
    broker.register_task(spec.run, spec.name, **labels)


class Jobs:
    """The process's broker and relay: the API's lifespan and the worker start and stop them."""

    def __init__(self) -> None:
        self.broker: AsyncBroker | None = None
        self.settings = JobsSettings()
        self.modules: list[str] = []
        self._relay: asyncio.Task[None] | None = None

    def configure(self, settings: JobsSettings, modules: list[str]) -> AsyncBroker:
        """Build the broker (not connected yet); the worker's entry point calls this at import."""
        self.settings = settings
        Retry.attempts, Retry.backoff, Retry.backoff_max = (
            settings.max_attempts,
            settings.retry_backoff,
            settings.retry_backoff_max,
        )
        broker = self.broker = build_broker(settings, modules)
        self.modules = list(modules)
        # A switched-off module's tasks may be declared all the same (an app of this process had it
        # on): kept off the broker, they are not run, not scheduled and sent no event.
        switched_off = set(module_names()) - set(modules)

        def add(spec: TaskSpec) -> None:
            if spec.module not in switched_off:
                register(broker, settings, modules, spec)

        for spec in TASKS.values():
            add(spec)
        ON_ADD[:] = [add]
        return broker

    async def start(self, settings: JobsSettings, modules: list[str]) -> None:
        """Connect the broker and, when `jobs.relay`, start the outbox relay (the API's lifespan).

        A broker that does not answer does not stop the API: events wait in the outbox (the relay
        retries), and queueing a task fails until the broker is back.
        """
        broker = self.configure(settings, modules)
        try:
            await broker.startup()
        except Exception as exc:
            log.warning(
                "job broker unreachable at start-up", broker=settings.broker, error=f"{type(exc).__name__}: {exc}"
            )
        self.start_relay()

    def start_relay(self) -> None:
        if self.settings.relay and self._relay is None:
            self._relay = asyncio.create_task(relay_forever(self.settings.relay_interval, self.settings.relay_batch))

    async def stop(self) -> None:
        if self._relay is not None:
            self._relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay
            self._relay = None
        if self.broker is not None and not self.broker.is_worker_process:
            await self.broker.shutdown()

    async def send(
        self,
        task_name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        conversation_id: str | None = None,
    ) -> None:
        """Queue `task_name` with these arguments, carrying `conversation_id` (default: the current one)."""
        if self.broker is None:
            raise JobsError("jobs are not started: the app's lifespan (or the worker) starts them")
        spec = TASKS.get(task_name)
        if spec is None or self.broker.find_task(task_name) is None:
            raise JobsError(f"unknown task {task_name!r} (is its module enabled and its tasks/ package imported?)")
        labels = {"queue_name": queue_name(self.settings, spec.module, self.modules)}
        if conversation_id is not None:
            labels[CONVERSATION_LABEL] = conversation_id
        await AsyncKicker(task_name, self.broker, labels).kiq(*args, **(kwargs or {}))

    def handlers(self, event_type: str) -> list[str]:
        """The handler tasks of `event_type` on this broker (a switched-off module's are not)."""
        return [name for name in subscribers(event_type) if self.broker and self.broker.find_task(name)]


jobs = Jobs()
