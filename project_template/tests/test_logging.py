from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog

from src.core.config import LoggingSettings, load_settings
from src.core.logging import configure_logging, flush_access_log, write_access_line


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests here reconfigure logging; put the test configuration back afterwards."""
    yield
    configure_logging(load_settings().logging, environment="test")


def test_stdlib_lines_are_json_with_conversation_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(format="json", level="INFO"), environment="development")
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
    configure_logging(LoggingSettings(format="json", level="WARNING"), environment="development")
    structlog.get_logger("app").info("hidden")
    structlog.get_logger("app").warning("shown")
    err = capsys.readouterr().err
    assert "shown" in err
    assert "hidden" not in err


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(LoggingSettings(level="LOUD"))


def test_secrets_are_redacted_from_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(format="json"), environment="development")
    structlog.get_logger("app").info(
        "calling out",
        headers={"Authorization": "Bearer abc.def", "Accept": "application/json"},
        cookie="sid=abc.def",
        password="hunter2",
    )
    logging.getLogger("httpx").warning("raw headers", extra={"x": 1})
    logging.getLogger("uvicorn.error").error("headers %s", [(b"authorization", b"Bearer abc.def")])
    err = capsys.readouterr().err
    line = json.loads(next(line for line in err.splitlines() if "calling out" in line))
    assert line["headers"] == {"Authorization": "[redacted]", "Accept": "application/json"}
    assert line["cookie"] == line["password"] == "[redacted]"
    assert "hunter2" not in err
    assert "abc.def" not in err.split("headers [")[0]


@pytest.mark.parametrize("environment", ["development", "test"])
async def test_json_access_lines_are_buffered_then_flushed(
    capsys: pytest.CaptureFixture[str], environment: str
) -> None:
    """Tests go through the writer production uses."""
    configure_logging(LoggingSettings(format="json", flush_interval=0.05), environment=environment)
    structlog.contextvars.bind_contextvars(conversation_id="conv-5678-efgh")
    try:
        structlog.get_logger("app").info("ordinary line")
    finally:
        structlog.contextvars.clear_contextvars()
    write_access_line({"event": "request", "conversation_id": "conv-5678-efgh", "method": "GET", "status": 200})
    assert '"request"' not in capsys.readouterr().err, "written at once: the writer must buffer"
    for _ in range(100):  # the flush timer fires after flush_interval; never wait forever
        await asyncio.sleep(0.02)
        err = capsys.readouterr().err
        if err:
            break
    access = json.loads(err.splitlines()[0])
    assert access["event"] == "request"
    assert access["logger"] == "access"
    assert access["level"] == "info"
    assert access["conversation_id"] == "conv-5678-efgh"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", access["timestamp"])


async def test_access_lines_are_readable_on_a_console(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(format="console"), environment="development")
    write_access_line({"event": "request", "method": "GET", "route": "/items", "status": 204})
    err = capsys.readouterr().err  # at once: a person is watching
    assert re.search(r"request\s.*method=GET.*route=/items.*status=204", err)
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[-1])


def test_access_lines_below_level_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(format="json", level="WARNING"), environment="development")
    write_access_line({"event": "request", "method": "GET", "status": 200})
    write_access_line({"event": "request", "method": "GET", "status": 503})
    flush_access_log()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"request"' in line]
    assert [(line["status"], line["level"]) for line in lines] == [(503, "error")]


def test_uvicorn_access_log_is_off_ours_replaces_it() -> None:
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.addHandler(logging.StreamHandler())  # as uvicorn's own logging config does
    configure_logging(LoggingSettings(format="json"), environment="development")
    assert not uvicorn_access.hasHandlers()
