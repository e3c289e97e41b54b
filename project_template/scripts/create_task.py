"""Add a background task to a module, with a test that queues it (docs/events-and-jobs.md).

    uv run python scripts/create_task.py --module orders --name send_confirmation

Writes `modules/<module>/tasks/<name>.py` (the task `<module>.<name>`, found at start-up
by the API and the worker) and `modules/<module>/tests/test_task_<name>.py`. Queue it
with `await <name>.kiq(...)`. Nothing is written on bad input.
"""

from __future__ import annotations

import project_python  # noqa: F401  (first: runs this script in the project's environment)

# isort: split
import argparse
import keyword

from names import IDENTIFIER
from scaffolding import MODULES_DIR, Transaction, UsageError, fail, relative, require_module, tidy

TASK = '''"""`{module}.{name}`: run by the worker, queued with `await {name}.kiq(...)`."""

from src.core.jobs import task
from src.core.logging import get_logger

log = get_logger(__name__)


@task
async def {name}(item_id: int) -> int:
    """Do the work for one item (arguments travel as JSON: ids and plain values)."""
    log.info("{name}", item_id=item_id)
    return item_id
'''

TEST = '''"""`{module}.{name}` runs when queued (the memory broker runs it at once, in the test)."""

import structlog
from fastapi import FastAPI

from modules.{module}.tasks.{name} import {name}
from src.core.jobs.registry import TASKS


async def test_{name}_runs_when_queued(app: FastAPI) -> None:
    assert "{module}.{name}" in TASKS
    with structlog.testing.capture_logs() as logs:
        await {name}.kiq(item_id=7)
    assert [line["item_id"] for line in logs if line["event"] == "{name}"] == [7]
'''

PACKAGE = '"""Background work of the {module} module, run by the worker (docs/events-and-jobs.md)."""\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--module", required=True, help="an existing module, e.g. orders")
    parser.add_argument("--name", required=True, help="task function name, snake_case, e.g. send_confirmation")
    args = parser.parse_args(argv)
    module, name = args.module, args.name
    try:
        folder = require_module(module)
        if not IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
            raise UsageError(f"task name {name!r} must be a snake_case Python identifier, e.g. send_confirmation")
        path = folder / "tasks" / f"{name}.py"
        test = folder / "tests" / f"test_task_{name}.py"
        for existing in (path, test):
            if existing.exists():
                raise UsageError(f"{relative(existing)} already exists; choose another name")
    except UsageError as exc:
        fail(str(exc))

    changes = Transaction()
    package = MODULES_DIR / module / "tasks" / "__init__.py"
    if not package.exists():  # a module made before tasks/ was part of the template
        changes.write(package, PACKAGE.format(module=module))
    changes.write(path, TASK.format(module=module, name=name))
    changes.write(test, TEST.format(module=module, name=name))
    tidy(changes.commit())
    print(f"created {relative(path)} (task {module}.{name})")
    print(f"created {relative(test)}")
    print(f"next: write the work, then `uv run pytest {relative(test)}`; queue it with `await {name}.kiq(...)`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
