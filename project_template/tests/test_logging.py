from __future__ import annotations

import json
import logging

import pytest
import structlog

from src.core.config import LoggingSettings
from src.core.logging import configure_logging


def test_stdlib_lines_are_json_with_conversation_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(format="json", level="INFO"), environment="production")
    structlog.contextvars.bind_contextvars(conversation_id="conv-1234-abcd")
    try:
        logging.getLogger("sqlalchemy.engine").warning("slow query")
        structlog.get_logger("app").info("hello", answer=42)
    finally:
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    by_event = {line["event"]: line for line in lines}
    assert by_event["slow query"]["conversation_id"] == "conv-1234-abcd"
    assert by_event["slow query"]["logger"] == "sqlalchemy.engine"
    assert by_event["hello"]["conversation_id"] == "conv-1234-abcd"
    assert by_event["hello"]["answer"] == 42
    assert by_event["hello"]["level"] == "info"
    assert "timestamp" in by_event["hello"]


def test_console_format_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(format="console"), environment="development")
    structlog.get_logger("app").info("readable line")
    err = capsys.readouterr().err
    assert "readable line" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[-1])


def test_level_filters(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(format="json", level="WARNING"), environment="production")
    structlog.get_logger("app").info("hidden")
    structlog.get_logger("app").warning("shown")
    err = capsys.readouterr().err
    assert "shown" in err
    assert "hidden" not in err


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(LoggingSettings(level="LOUD"))
