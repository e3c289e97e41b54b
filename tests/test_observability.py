"""Observability across processes and answers: metrics with two workers, tracing only when asked for."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BARE = {"auth": "rbac", "with_example_module": False}
LIVE = re.compile(r'^http_requests_total\{[^}]*route="/health/live"[^}]*\} ([0-9.]+)$', re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    # A new connection per call, so the kernel picks the worker each time.
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@pytest.fixture
def two_workers(project: Callable[..., Path], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = project(**BARE)
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "DATABASE_URL", "REDIS_URL"}}
    env |= {
        "CONFIG_ENV": "development",
        "APP_LOGGING__LEVEL": "WARNING",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    uvicorn = root / ".venv" / "bin" / "uvicorn"
    command = [uvicorn, "src.app:app", "--workers", "2", "--port", str(port), "--log-level", "warning"]
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "workers did not start within 90 s"
            try:
                _get(f"{base}/health/live")
                break
            except OSError:
                time.sleep(0.3)
        yield base, multiproc
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_metrics_add_up_across_two_workers(two_workers: tuple[str, Path]) -> None:
    base, multiproc = two_workers
    sent = 1  # the start-up probe
    # Until both workers have counted something (each writes its own counter file).
    while len(list(multiproc.glob("counter_*.db"))) < 2 and sent < 2000:
        _get(f"{base}/health/live")
        sent += 1
    assert len(list(multiproc.glob("counter_*.db"))) == 2, "one worker took every connection"
    for _ in range(6):  # whichever worker answers the scrape reports the total of both
        totals = [float(value) for value in LIVE.findall(_get(f"{base}/metrics"))]
        assert sum(totals) == sent


def test_tracing_only_when_asked_for(project: Callable[..., Path]) -> None:
    plain = project(**BARE)
    assert "opentelemetry" not in (plain / "pyproject.toml").read_text()
    assert not (plain / "src" / "core" / "tracing.py").exists()
    assert "tracing:" not in (plain / "config" / "production.yml").read_text()

    traced = project(**BARE, with_tracing=True)
    assert "opentelemetry-sdk" in (traced / "pyproject.toml").read_text()
    assert (traced / "src" / "core" / "tracing.py").is_file()
    assert (traced / "tests" / "test_tracing.py").is_file()
    assert "tracing:" in (traced / "config" / "production.yml").read_text()
