"""Runs a docs/examples/*.md page of a rendered project the way its reader would.

Each fenced block, in order:
- ```bash: run with `bash -eo pipefail` in the project directory;
- ```python: run as a script (`uv run python -`) in the project directory;
- a block right after `<!-- file: PATH -->`: written to PATH (the reader creates or replaces that file);
- a bash block right after `<!-- serve: PORT -->`: a server the reader leaves running. It is started in
  the background; the next block runs once PORT accepts connections, and it is stopped at the page's end;
- ```text (or ```console) right after a bash or python block: the output it shows. Each of its non-blank lines must
  appear in the command's output, in order; `...` inside a line stands for any text (or none).
Any other block (yaml, json, a shell session in prose) is only read.

    uv run python tests/docs_examples.py PROJECT docs/examples/PAGE.md    # run one page
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BLOCK = re.compile(r"(?:<!--\s*(file|serve):\s*(\S+)\s*-->\s*\n)?^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
TIMEOUT = 300  # seconds for one block


@dataclass
class Block:
    kind: str  # bash, python, text, ...
    body: str
    marker: str | None = None  # file or serve
    argument: str | None = None
    line: int = 0


def blocks(text: str) -> list[Block]:
    return [
        Block(m.group(3), m.group(4), m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in BLOCK.finditer(text)
    ]


def shows(output: str, expected: str) -> bool:
    """Each non-blank expected line is found in the output, in order (`...` matches anything)."""
    lines = output.splitlines()
    position = 0
    for want in filter(None, (line.strip() for line in expected.splitlines())):
        pattern = re.compile(".*".join(re.escape(part) for part in re.split(r"\s*\.\.\.\s*", want)))
        while position < len(lines) and not pattern.search(lines[position]):
            position += 1
        if position == len(lines):
            return False
        position += 1
    return True


def environment() -> dict[str, str]:
    # The project's own .venv, whatever environment runs this; no colours in the output.
    env = {key: value for key, value in os.environ.items() if key not in {"VIRTUAL_ENV", "CONFIG_ENV"}}
    env.update(NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env


def wait_for_port(port: int, server: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server for port {port} exited {server.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


@contextlib.contextmanager
def servers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for server in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def run_page(project: Path, page: Path) -> list[str]:
    """Run every block of `page` in `project`; returns what each command printed (for reports)."""
    transcript: list[str] = []
    env = environment()
    where = page.relative_to(project) if page.is_relative_to(project) else page
    with servers() as started:
        last_output: str | None = None
        for block in blocks(page.read_text()):
            label = f"{where}:{block.line}"
            if block.marker == "file":
                target = project / str(block.argument)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.body)
                last_output = None
            elif block.marker == "serve":
                port = int(str(block.argument))
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    raise AssertionError(f"{label}: port {port} is taken: stop what listens there, then run again")
                log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - a pipe nobody reads would fill and stall the server
                server = subprocess.Popen(
                    ["bash", "-c", block.body], cwd=project, env=env, text=True,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
                started.append(server)
                wait_for_port(port, server)
                last_output = None
            elif block.kind in {"bash", "python"}:
                command = ["bash", "-eo", "pipefail", "-c", block.body]
                if block.kind == "python":
                    command = ["uv", "run", "--quiet", "python", "-"]
                started_at = time.monotonic()
                result = subprocess.run(
                    command, cwd=project, env=env, text=True, capture_output=True, timeout=TIMEOUT,
                    input=block.body if block.kind == "python" else None,
                )  # fmt: skip
                last_output = result.stdout + result.stderr
                transcript.append(f"--- {label} ({time.monotonic() - started_at:.1f} s)\n{block.body}{last_output}")
                if result.returncode != 0:
                    raise AssertionError(f"{label}: exited {result.returncode}\n{block.body}\n{last_output[-4000:]}")
            elif block.kind in {"text", "console"} and last_output is not None:
                if not shows(last_output, block.body):
                    raise AssertionError(
                        f"{label}: the output does not show\n{block.body}\ngot:\n{last_output[-4000:]}"
                    )
                last_output = None
    return transcript


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve()
    for name in sys.argv[2:]:
        started_at = time.monotonic()
        for entry in run_page(root, (root / name).resolve()):
            print(entry.splitlines()[0], entry.splitlines()[1][:100])
        print(f"{name}: ok ({time.monotonic() - started_at:.1f} s)")
