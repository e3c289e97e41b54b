"""`/health`: is the database reachable? 200 with details, 503 when not; never hangs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from src.core.cache import cache_manager
from src.core.db import database
from src.core.logging import get_logger

router = APIRouter(tags=["health"])
log = get_logger(__name__)


async def check_database() -> dict[str, Any]:
    try:
        latency = await database.ping()
    except TimeoutError:
        return {"status": "down", "error": "timed out"}
    except Exception as exc:  # any driver error means "down", reported, not raised
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round(latency, 2)}


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
