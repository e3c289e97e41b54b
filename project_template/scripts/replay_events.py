"""List dead letters (tasks and event handlers that failed every attempt) and send them again.

    uv run python scripts/replay_events.py --list                 # what is waiting, oldest first
    uv run python scripts/replay_events.py --all                  # replay every one
    uv run python scripts/replay_events.py --id 12 --id 13        # these
    uv run python scripts/replay_events.py --task users.send_welcome --all

The broker is the configured one (config/<CONFIG_ENV>.yml, JOBS_BROKER): a worker runs the
replayed messages; with the memory broker they run here, before this script ends.
Exit status: 0 done (or nothing to do), 1 failure, 2 usage error.
"""

from __future__ import annotations

import project_python  # noqa: F401  (first: runs this script in the project's environment)

# isort: split
import argparse
import asyncio

import scaffolding  # noqa: F401  (puts the project root on sys.path)

from src.core.config import ConfigError, get_settings
from src.core.db import database
from src.core.http_client import http_client
from src.core.jobs import JobsError, jobs
from src.core.jobs.dead_letters import pending, replay
from src.core.logging import configure_logging
from src.core.module_loader import load_modules


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--list", action="store_true", help="print the dead letters waiting, replay nothing")
    which.add_argument("--all", action="store_true", help="replay every dead letter waiting")
    which.add_argument("--id", action="append", type=int, metavar="ID", help="replay this one (repeatable)")
    parser.add_argument("--task", metavar="MODULE.TASK", help="only dead letters of this task")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.logging, environment=settings.environment)
    database.configure(settings.database)
    modules = [module.name for module in load_modules(settings)]
    await http_client.start(settings.http)  # the memory broker runs the tasks here
    await jobs.start(settings.jobs.model_copy(update={"relay": False}), modules)
    try:
        if args.list:
            for letter in await pending(task_name=args.task):
                print(
                    f"{letter.id}: {letter.task_name} failed {letter.failed_at:%Y-%m-%d %H:%M:%S} "
                    f"after {letter.attempts} attempts: {letter.error.splitlines()[-1]}"
                )
            return 0
        done = await replay(args.id, args.task)
        print(f"replayed {len(done)} dead letter(s)" + (f": {', '.join(str(d.id) for d in done)}" if done else ""))
        return 0
    finally:
        await jobs.stop()
        await http_client.close()
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return asyncio.run(run(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}")
        return 1
    except JobsError as exc:
        print(f"error: {exc}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
