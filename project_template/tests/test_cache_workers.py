"""The in-memory cache says so at start-up when several worker processes would each keep their own copy."""

from __future__ import annotations

import pytest
import structlog

from src.core.cache import cache_manager
from src.core.config import CacheSettings

WARNING = "in-memory cache with several worker processes"


async def _warnings_at_connect() -> list[str]:
    with structlog.testing.capture_logs() as logs:
        await cache_manager.connect(CacheSettings(backend="memory"))
    await cache_manager.close()
    return [entry["event"] for entry in logs if entry["log_level"] == "warning"]


@pytest.mark.parametrize(
    "environ",
    [{"WEB_CONCURRENCY": "4"}, {"PROMETHEUS_MULTIPROC_DIR": "prometheus"}],
    ids=["web-concurrency", "multiprocess-metrics"],
)
async def test_several_workers_are_told_to_use_redis(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    warnings = await _warnings_at_connect()
    assert any(WARNING in event and "Redis" in event for event in warnings), warnings


async def test_one_worker_is_not_warned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert not any(WARNING in event for event in await _warnings_at_connect())
