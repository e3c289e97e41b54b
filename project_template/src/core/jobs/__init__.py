"""Background jobs and events between modules, on Taskiq (docs/events-and-jobs.md).

- `task` / `periodic`: a module's background work, in `modules/<m>/tasks/`, named `<m>.<function>`;
- `Event`, `publish(session, event)`, `handles(EventType)`: events in `modules/<m>/events/`, written
  to the outbox in the publisher's transaction, relayed to the broker, handled once per handler (inbox);
- failed runs are retried with backoff, then kept in `core_dead_letters` (`scripts/replay_events.py`);
- `jobs`: the process's broker and outbox relay (`src/worker.py` is the worker's entry point).
"""

from src.core.jobs.events import Event, handles, publish
from src.core.jobs.registry import JobsError
from src.core.jobs.runtime import jobs
from src.core.jobs.tasks import JobTask, periodic, task

__all__ = ["Event", "JobTask", "JobsError", "handles", "jobs", "periodic", "publish", "task"]
