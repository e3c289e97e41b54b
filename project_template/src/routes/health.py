"""Health endpoints; each check has a short timeout and none ever hangs.

- `/health/live`: the process answers (liveness: restart me if not).
- `/health/ready`: database reachable, every module's migrations at head, cache
  answering (readiness: send me traffic). 503 names the failed checks.
- `/health`: database connectivity, as before (200 or 503), plus the cache state.

A cache outage is reported as `degraded` but keeps `/health/ready` at 200: the
cache manager serves without cache meanwhile, and taking every instance out of
rotation because Redis is down would turn a slowdown into an outage. Other optional
dependencies add their own check to `app.state.degraded_checks` (name -> async check
returning `{"status": "up" | "down", ...}`), reported the same way: in Keycloak
mode, `auth` says whether the realm's signing keys are at hand.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from fastapi import APIRouter, Request, Response, status

from src.core.cache import cache_manager
from src.core.db import database
from src.core.logging import get_logger

router = APIRouter(tags=["health"])
log = get_logger(__name__)

# Probes usually give up after 1 s: every readiness check answers well before.
READY_TIMEOUT = 0.8


async def check_database() -> dict[str, Any]:
    try:
        latency = await database.ping()
    except TimeoutError:
        return {"status": "down", "error": "timed out"}
    except Exception as exc:  # any driver error means "down", reported, not raised
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round(latency, 2)}


async def load_migrations() -> None:
    """Import `src.core.migrations` off the event loop, once: Alembic is slow to import and only probes need it."""
    if "src.core.migrations" not in sys.modules:
        await asyncio.to_thread(importlib.import_module, "src.core.migrations")


async def check_migrations(skip: Collection[str] = ()) -> dict[str, Any]:
    """Each enabled module at this code's head; a database *ahead* (a newer release migrated it) still counts as ready.

    During a rolling deploy the new release migrates first; old instances must keep
    serving (migrations are additive until the old release is gone), not drop out.
    """
    await load_migrations()
    from src.core.migrations import standing

    found = await standing(skip)  # quiet: no Alembic INFO lines on every probe
    if found.behind:
        return {"status": "down", "error": "migrations not at head", "modules": found.behind}
    result: dict[str, Any] = {"status": "up", "modules": found.current}
    if found.ahead:
        result["ahead"] = found.ahead
    return result


async def check_cache() -> dict[str, Any]:
    result: dict[str, Any] = await cache_manager.check()
    return result


async def _bounded(check: Callable[[], Awaitable[dict[str, Any]]], limit: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(limit):
            return await check()
    except TimeoutError:
        return {"status": "down", "error": f"no answer within {limit} s"}
    except Exception as exc:  # a failing check is reported, never raised (by type: messages may hold hosts)
        return {"status": "down", "error": type(exc).__name__}


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(request: Request, response: Response) -> dict[str, Any]:
    optional: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = getattr(request.app.state, "degraded_checks", {})
    await load_migrations()
    names = ["database", "migrations", "cache", *optional]
    states = await asyncio.gather(
        _bounded(check_database, READY_TIMEOUT),
        # A switched-off module's tables may lag behind: it serves nothing (modules.disabled).
        _bounded(lambda: check_migrations(request.app.state.settings.modules.disabled), READY_TIMEOUT),
        _bounded(check_cache, READY_TIMEOUT),
        *(_bounded(check, READY_TIMEOUT) for check in optional.values()),
    )
    checks = dict(zip(names, states, strict=True))
    failed = [name for name in ("database", "migrations") if checks[name]["status"] != "up"]
    # Degraded, not failed: anonymous and public routes still work, and every instance unready
    # because of a shared dependency would turn a slowdown into a full outage.
    degraded = [name for name in ("cache", *optional) if checks[name]["status"] != "up"]
    if failed:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        log.warning("not ready", failed=failed, checks=checks)
    overall = "unavailable" if failed else "degraded" if degraded else "ok"
    return {"status": overall, "failed": failed, "degraded": degraded, "checks": checks}


@router.get("/health")
async def health(response: Response) -> dict[str, Any]:
    checks = {"database": await check_database()}
    healthy = all(check["status"] == "up" for check in checks.values())
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        log.warning("health check failed", checks=checks)
    # The cache is optional: degraded means "serving without cache", reported but never a 503.
    checks["cache"] = cache_manager.status()
    return {"status": "ok" if healthy else "unavailable", "checks": checks}
