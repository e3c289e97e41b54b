"""What the modules declared: their tasks (by name) and which handlers each event type has.

Filled at import time by the `task`, `periodic` and `handles` decorators, that is, when the
module loader imports `modules/<m>/tasks/` (it skips a switched-off module). The broker registers
every entry but those of a switched-off module when it is built (`src/core/jobs/runtime.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


class JobsError(RuntimeError):
    """A task or event was declared wrongly (the message says how to fix it)."""


@dataclass
class TaskSpec:
    name: str  # `<module>.<function>`, the name the broker knows it by
    module: str  # routes it to the module's queue
    run: Callable[..., Awaitable[Any]]  # the function with retries and dead letters around it
    origin: str  # where it was declared (`modules.users.tasks.welcome.send_welcome`)
    schedule: list[dict[str, Any]] = field(default_factory=list)


TASKS: dict[str, TaskSpec] = {}
# Told of each task declared after the broker was built (`taskiq worker src.worker:broker more.tasks`).
ON_ADD: list[Callable[[TaskSpec], None]] = []
# event type (`users.UserRegistered`) -> names of the handler tasks subscribed to it
SUBSCRIPTIONS: dict[str, list[str]] = {}


def module_of(python_module: str, override: str | None = None) -> str:
    """`modules.users.tasks.welcome` -> `users`; code outside modules/ must name its module."""
    if override:
        return override
    parts = python_module.split(".")
    if len(parts) >= 2 and parts[0] == "modules":
        return parts[1]
    raise JobsError(
        f"{python_module} is not inside modules/<name>/: pass module='<name>' to the decorator "
        "(an Event subclass: set __event_module__ = '<name>')"
    )


def add_task(spec: TaskSpec) -> None:
    known = TASKS.get(spec.name)
    if known is not None and known.origin != spec.origin:
        raise JobsError(f"two tasks are named {spec.name!r} ({known.origin}, {spec.origin}): rename one")
    TASKS[spec.name] = spec
    for listener in ON_ADD:
        listener(spec)


def subscribe(event_type: str, task_name: str) -> None:
    names = SUBSCRIPTIONS.setdefault(event_type, [])
    if task_name not in names:
        names.append(task_name)


def subscribers(event_type: str) -> list[str]:
    return SUBSCRIPTIONS.get(event_type, [])
