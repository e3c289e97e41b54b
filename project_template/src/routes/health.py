"""Health endpoints; each check has a short timeout and none ever hangs.

- `/health/live`: the process answers (liveness: restart me if not).
- `/health/ready`: database reachable, every module's migrations at head, cache
  answering (readiness: send me traffic). 503 names the failed checks.
- `/health`: database connectivity, as before (200 or 503), plus the cache state.

A cache outage is reported as `degraded` but keeps `/health/ready` at 200: the
cache manager serves without cache meanwhile, and taking every instance out of
rotation because Redis is down would turn a slowdown into an outage. In Keycloak
mode, signing keys that cannot be fetched (protected routes answer 503) show as
`auth` under `degraded` the same way.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response, status

from src.core.cache import cache_manager
from src.core.db import database
from src.core.logging import get_logger
from src.core.migrations import standing
from src.core.security import AuthError

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


async def check_migrations() -> dict[str, Any]:
    """Each module at this code's head; a database *ahead* (a newer release migrated it) still counts as ready.

    During a rolling deploy the new release migrates first; old instances must keep
    serving (migrations are additive until the old release is gone), not drop out.
    """
    found = await standing()  # quiet: no Alembic INFO lines on every probe
    if found.behind:
        return {"status": "down", "error": "migrations not at head", "modules": found.behind}
    result: dict[str, Any] = {"status": "up", "modules": found.current}
    if found.ahead:
        result["ahead"] = found.ahead
    return result


async def check_cache() -> dict[str, Any]:
    result: dict[str, Any] = await cache_manager.check()
    return result


async def check_auth(backend: Any) -> dict[str, Any]:
    """Keycloak mode: the realm's signing keys are at hand (fetched now if none are), so tokens can be checked."""
    jwks = backend.jwks
    if not jwks.loaded:
        try:
            await jwks.refresh()  # at most one attempt per second while Keycloak is down
        except AuthError as exc:
            return {"status": "down", "error": str(exc)}
    return {"status": "up"}


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


async def _no_check() -> None:
    return None


@router.get("/health/ready")
async def ready(request: Request, response: Response) -> dict[str, Any]:
    backend = request.app.state.auth_backend
    # Only Keycloak mode depends on another service to check tokens (rbac checks them locally).
    has_idp = getattr(backend, "jwks", None) is not None
    database_state, migrations_state, cache_state, auth_state = await asyncio.gather(
        _bounded(check_database, READY_TIMEOUT),
        _bounded(check_migrations, READY_TIMEOUT),
        _bounded(check_cache, READY_TIMEOUT),
        _bounded(functools.partial(check_auth, backend), READY_TIMEOUT) if has_idp else _no_check(),
    )
    checks = {"database": database_state, "migrations": migrations_state, "cache": cache_state}
    if auth_state is not None:
        checks["auth"] = auth_state
    failed = [name for name in ("database", "migrations") if checks[name]["status"] != "up"]
    # Degraded, not failed: another instance could not check tokens either, and anonymous
    # and public routes still work; every instance unready would turn that into a full outage.
    degraded = [name for name in ("cache", "auth") if name in checks and checks[name]["status"] != "up"]
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
