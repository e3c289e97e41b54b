"""Apply, revert, check and write each module's migrations (one Alembic history per module).

    uv run python scripts/run_migrations.py --all                          # every module to head, sorted by name
    uv run python scripts/run_migrations.py --module orders                # one module (repeatable)
    uv run python scripts/run_migrations.py --module orders --downgrade base   # or a revision id
    uv run python scripts/run_migrations.py --status
    uv run python scripts/run_migrations.py --check                        # exit 1 when models and migrations drift
    uv run python scripts/run_migrations.py --module orders --autogenerate "add note column"

The database is the application's (config/<CONFIG_ENV>.yml, DATABASE_URL). On
PostgreSQL an advisory lock is held while migrating, so several replicas
starting at once apply each migration exactly once. Exit status: 0 done,
1 failure or drift, 2 usage error.
"""

from __future__ import annotations

import project_python  # noqa: F401  (first: runs this script in the project's environment)

# isort: split
import argparse
import asyncio
import logging

from scaffolding import relative  # also puts the project root on sys.path

from src.core.migrations import (
    MigrationError,
    check,
    downgrade,
    make_revision,
    migration_modules,
    migration_status,
    upgrade,
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every module (the default for --status and --check)")
    which.add_argument("--module", action="append", metavar="NAME", help="this module (repeat for several)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--revision", default="head", help="upgrade to this revision (default: head)")
    action.add_argument("--downgrade", metavar="REV", help="downgrade one --module to REV (`base`: drop its tables)")
    action.add_argument("--status", action="store_true", help="print each module's current and head revision")
    action.add_argument("--check", action="store_true", help="exit 1 if a module is not at head or its models drift")
    action.add_argument("--autogenerate", metavar="MESSAGE", help="write a new revision for one --module")
    args = parser.parse_args(argv)
    known = migration_modules()
    for name in args.module or []:
        if name not in known:
            parser.error(f"unknown module {name!r} (modules with migrations: {', '.join(known) or 'none'})")
    one_module = args.downgrade or args.autogenerate or args.revision not in ("head", "heads")
    if one_module and len(args.module or []) != 1:
        parser.error("--downgrade, --autogenerate and --revision need exactly one --module (ids are per module)")
    if not (args.all or args.module or args.status or args.check):
        parser.error("say which modules: --all or --module NAME")
    return args


async def run(args: argparse.Namespace) -> int:
    modules = args.module  # None: every module
    if args.status or args.check:
        for name, state in (await migration_status(modules)).items():
            mark = "at head" if state["current"] == state["head"] else "PENDING"
            print(f"{name}: current {state['current'] or '-'}, head {state['head'] or '-'} ({mark})")
    if args.status:
        return 0
    if args.check:
        drifts = await check(modules)
        for drift in drifts:
            print(f"{drift.module}: {drift.problem}")
        print("drift found" if drifts else "models and migrations agree")
        return 1 if drifts else 0
    if args.downgrade:
        await downgrade(modules[0], args.downgrade)
        print(f"{modules[0]}: downgraded to {args.downgrade}")
        return 0
    if args.autogenerate:
        path = await make_revision(modules[0], args.autogenerate)
        print(f"{modules[0]}: wrote {relative(path)} (read it before applying)")
        return 0
    done = await upgrade(modules, args.revision)
    print(f"upgraded to {args.revision}: {', '.join(done) or 'no modules'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Alembic reports each step ("Running upgrade  -> 0001, create orders") at INFO.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    steps = logging.getLogger("alembic.runtime.migration")
    steps.setLevel(logging.INFO)
    steps.addFilter(lambda record: record.getMessage().startswith("Running "))
    try:
        return asyncio.run(run(args))
    except MigrationError as exc:
        print(f"error: {exc}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
