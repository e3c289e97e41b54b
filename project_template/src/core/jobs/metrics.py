"""Task metrics, per module and task, on the worker's `/metrics` (and the API's, for what it queues).

Names and labels stay bounded: a task name is `<module>.<task>`, declared in code.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LABELS = ("module", "task")

QUEUED = Counter("jobs_queued_total", "Tasks and handler deliveries sent to the broker", LABELS)
STARTED = Counter("jobs_started_total", "Task runs started (a message taken from the broker)", LABELS)
SUCCEEDED = Counter("jobs_succeeded_total", "Task runs that succeeded (after any retries)", LABELS)
FAILED = Counter("jobs_failed_total", "Task attempts that raised", LABELS)
RETRIED = Counter("jobs_retried_total", "Task attempts that were a retry", LABELS)
DEAD_LETTERED = Counter(
    "jobs_dead_lettered_total", "Task runs that failed their last attempt (core_dead_letters)", LABELS
)
SKIPPED = Counter("jobs_duplicates_skipped_total", "Event deliveries a handler had already processed (inbox)", LABELS)
DURATION = Histogram(
    "jobs_duration_seconds",
    "Time a task run took, retries included",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
QUEUE_DEPTH = Gauge("jobs_queue_depth", "Messages waiting in a module's queue (Redis)", ("module",))
OUTBOX_LAG = Gauge("jobs_outbox_lag_seconds", "Age of the oldest event not yet relayed (0: none waiting)")
OUTBOX_RELAYED = Counter("jobs_outbox_relayed_total", "Outbox events handed to the broker")


def labels(task_name: str) -> tuple[str, str]:
    module, _, _ = task_name.partition(".")
    return module, task_name
