"""The example module's authenticated `GET /api/v1/users/{id}` against bench/minimal_app.py, side by side.

Three pairs, each alternated A B A B on one core with wrk on the other:

- `cached_get_vs_minimal`: cache in memory (the minimal app: a dict);
- `redis_get_vs_minimal_redis`: cache on Redis (the minimal app: redis-py `GET`);
- `db_get_vs_minimal`: cache off, one primary-key query per request (the project's service
  with its `@cached` taken off, in a wrapper app of this benchmark; the minimal app: `session.get`).

Both apps run in the generated project's venv against the same database (a fresh
PostgreSQL database when one is reachable, else SQLite, said in the output) and the
same row, with the same RBAC access token. A ratio above 1 means the project is faster.

    uv run python bench/request_path.py [--project DIR] [--rounds 4] [--duration 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from serving import alternate, cpus, ensure_wrk, log, project_env, summary, uvicorn  # noqa: E402

from tests.helpers import drop_postgres_database, fresh_postgres_database, service_available  # noqa: E402

PATH = "/api/v1/users/{id}"
SEED = """
import asyncio, json
from modules.users.schemas import UserCreate
from modules.users.services import user_service
from src.core.config import get_settings
from src.core.db import database
from src.core.security.rbac import create_access_token

async def main():
    settings = get_settings()
    async with database.sessionmaker() as session:
        user = await user_service.create(
            session=session,
            data=UserCreate(email="bench@example.com", name="Bench", bio="A row to read. " * 10, attributes={"a": 1}),
        )
    await database.dispose()
    config = settings.auth.rbac.model_copy(update={"access_token_ttl": 86400})
    token = create_access_token(config=config, subject="bench", username="bench")
    secret = config.secret_key.get_secret_value()
    print(json.dumps({"id": user.id, "token": token, "issuer": config.issuer, "secret": secret}))

asyncio.run(main())
"""
# The project app with the service's cache taken off: every GET runs the query.
NO_CACHE_APP = """
from modules.users.services import user_service
from src.app import app

type(user_service).get = type(user_service).get.__wrapped__
"""


@contextmanager
def database_url(project: Path) -> Iterator[str]:
    if service_available("postgres") is None:
        url = fresh_postgres_database()
        try:
            yield url
        finally:
            drop_postgres_database(url)
    else:
        log("PostgreSQL not reachable: the database figure is measured on SQLite")
        yield f"sqlite+aiosqlite:///{project}/data/bench.db"


def prepare(project: Path, url: str) -> dict[str, str]:
    """Migrate, insert one row; return its id, a day-long token, and the signing settings."""
    (project / "data").mkdir(exist_ok=True)
    env = project_env(project, DATABASE_URL=url)
    python = str(project / ".venv" / "bin" / "python")
    subprocess.run(
        [python, "scripts/run_migrations.py", "--all"], cwd=project, env=env, check=True, capture_output=True
    )
    out = subprocess.run([python, "-c", SEED], cwd=project, env=env, check=True, capture_output=True, text=True)
    shutil.copy(BENCH / "minimal_app.py", project / "bench_minimal.py")
    (project / "bench_nocache.py").write_text(NO_CACHE_APP)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(project: Path, args: argparse.Namespace) -> dict[str, float]:
    wrk = ensure_wrk()
    server_cpu, wrk_cpu = cpus()
    pairs = {
        "cached_get_vs_minimal": ("src.app:app", {"CACHE_BACKEND": "memory"}, "memory"),
        "redis_get_vs_minimal_redis": ("src.app:app", {"CACHE_BACKEND": "redis"}, "redis"),
        "db_get_vs_minimal": ("bench_nocache:app", {"CACHE_BACKEND": "memory"}, "none"),
    }
    if service_available("redis") is not None:
        log("Redis not reachable: no Redis figure")
        del pairs["redis_get_vs_minimal_redis"]
    figures: dict[str, float] = {}
    with database_url(project) as url, tempfile.TemporaryDirectory(prefix="bench_logs_") as logs:
        seed = prepare(project, url)
        log(f"database: {url.split(':', 1)[0]}")
        headers = {"Authorization": f"Bearer {seed['token']}"}
        base = project_env(project, DATABASE_URL=url, JWT_SECRET_KEY=seed["secret"], MINIMAL_ISSUER=seed["issuer"])
        for name, (target, extra, minimal_cache) in pairs.items():
            log(f"{name}:")
            minimal_env = {**base, "MINIMAL_CACHE": minimal_cache}
            with (
                uvicorn(project, "bench_minimal:app", minimal_env, Path(logs) / "minimal.log", server_cpu) as minimal,
                uvicorn(project, target, {**base, **extra}, Path(logs) / "project.log", server_cpu) as app,
            ):
                minimal.name, app.name = f"minimal ({minimal_cache})", f"project ({target}, {extra})"
                ratio = alternate(
                    (minimal, app),
                    PATH.format(id=seed["id"]),
                    wrk=wrk,
                    rounds=args.rounds,
                    duration=args.duration,
                    connections=args.connections,
                    cpu=wrk_cpu,
                    headers=headers,
                )
                for server in (minimal, app):
                    log(f"  {server.name}: {summary(server)}")
            figures[name] = ratio
            print(f"{name}: {ratio:.2f}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True, help="a rendered project (auth=rbac, example module)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    measure(parser.parse_args().project.resolve(), parser.parse_args())


if __name__ == "__main__":
    main()
