"""Tracing is an optional part: enabled without it rendered, start-up says how to add it."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from src.core.config import ConfigError, Settings, TracingSettings
from src.core.telemetry import TRACING_MODULE, load_tracing


def test_off_by_default(settings: Settings) -> None:
    assert load_tracing(settings) is None


def test_enabled_loads_tracing_or_says_how_to_add_it(settings: Settings) -> None:
    enabled = settings.model_copy(update={"tracing": TracingSettings(enabled=True, exporter="none")})
    if find_spec(TRACING_MODULE) is None:
        with pytest.raises(ConfigError, match="with_tracing=true"):
            load_tracing(enabled)
    else:
        tracing = load_tracing(enabled)
        assert tracing is not None
        assert tracing.log_processors
