"""The shipped production configuration's telemetry: metrics on, tracing only when asked for."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from src.core import config
from src.core.config import Settings, load_settings
from src.core.telemetry import TRACING_MODULE


def production(monkeypatch: pytest.MonkeyPatch, **environ: str) -> Settings:
    monkeypatch.setattr(config, "PROJECT_ROOT", config.CONFIG_DIR)  # no .env
    monkeypatch.delenv("APP_TRACING__ENABLED", raising=False)
    monkeypatch.delenv("TRACING_ENABLED", raising=False)
    required = {
        "CONFIG_ENV": "production",
        "DATABASE_URL": "postgresql+asyncpg://u@h/d",
        "REDIS_URL": "redis://h:6379/0",
        "KEYCLOAK_SERVER_URL": "https://sso.example.com",
        "JWT_SECRET_KEY": "Kq3v9ZmT2xWb7LpR4sYd8NhC6fJg1AeU5tQz0VkX",
    }
    for name, value in {**required, **environ}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_production_exports_metrics_and_no_traces_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = production(monkeypatch)
    assert settings.metrics.enabled
    assert not settings.tracing.enabled, "without a collector every span export would fail and warn"


def test_production_traces_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = production(monkeypatch, TRACING_ENABLED="true")
    rendered_with_tracing = find_spec(TRACING_MODULE) is not None
    assert settings.tracing.enabled is rendered_with_tracing
