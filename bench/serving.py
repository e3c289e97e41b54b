"""What the throughput benchmarks share: uvicorn servers, wrk runs, and A B A B alternation.

Every server runs under uvicorn with one worker, uvloop + httptools (the
`uvicorn[standard]` defaults) and no access log of uvicorn's own. wrk (installed
with apt-get when missing) is pinned to the other core when there are two.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: installing the Debian package (apt-get install -y wrk)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    try:
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"wrk is required and could not be installed ({exc}); install it: apt-get install -y wrk")
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is still missing after apt-get; install it by hand")
    return found


def cpus() -> tuple[int | None, int | None]:
    """(server core, wrk core): apart when there are two cores and taskset, else unpinned."""
    two = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    return (0, 1) if two else (None, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project_env(project: Path, **extra: str) -> dict[str, str]:
    """Development configuration with production-like logging: JSON lines, INFO, no debug."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(
        CONFIG_ENV="development",
        APP_DEBUG="false",
        APP_LOGGING__FORMAT="json",
        APP_LOGGING__LEVEL="INFO",
        DATABASE_URL=f"sqlite+aiosqlite:///{project}/data/bench.db",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def uvicorn(
    project: Path, target: str, env: Mapping[str, str], log_file: Path, cpu: int | None = None
) -> Iterator[Server]:
    """Serve `target` (`module:app`) from the project's venv on a free port until the block ends."""
    port = free_port()
    command = [
        str(project / ".venv" / "bin" / "uvicorn"),
        target,
        "--host=127.0.0.1",
        f"--port={port}",
        "--workers=1",
        "--loop=uvloop",
        "--http=httptools",
        "--no-access-log",
        "--log-level=warning",
    ]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    with log_file.open("wb") as out:
        proc = subprocess.Popen(command, cwd=project, env=dict(env), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                sys.exit(f"{target} exited with {proc.returncode}:\n{log_file.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"{target} did not start within 60 s; see {log_file}")
                time.sleep(0.1)
        yield Server(target, port, proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Server:
    name: str
    port: int
    pid: int
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_run(
    wrk: str,
    url: str,
    duration: float,
    connections: int,
    cpu: int | None,
    headers: Mapping[str, str] = {},
    strict: bool = True,
) -> tuple[float, int]:
    """Requests per second and requests answered; exits when any answer is not a 2xx (or timed out, if strict)."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout=10s", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if not match or not count or "Non-2xx" in output or (strict and "Socket errors" in output):
        sys.exit(f"unexpected wrk output for {url}:\n{output}")
    return float(match.group(1)), int(count.group(1))


def alternate(
    servers: tuple[Server, Server],
    path: str,
    *,
    wrk: str,
    rounds: int,
    duration: float,
    connections: int,
    cpu: int | None,
    headers: Mapping[str, str] = {},
    warmup: float = 2,
) -> float:
    """Load A and B in turn (A B, B A, ...) and return the median over rounds of B's req/s over A's.

    Each round measures both back to back, so the slow drift of a shared machine cancels in the
    ratio; the median drops the outliers. The server's CPU time per request is kept as a cross-check.
    """
    for server in servers:
        wrk_run(wrk, f"http://127.0.0.1:{server.port}{path}", warmup, connections, cpu, headers, strict=False)
    for round_no in range(rounds):
        for server in servers if round_no % 2 == 0 else servers[::-1]:
            before = cpu_seconds(server.pid)
            rps, answered = wrk_run(wrk, f"http://127.0.0.1:{server.port}{path}", duration, connections, cpu, headers)
            after = cpu_seconds(server.pid)
            server.rps.append(rps)
            if before is not None and after is not None:
                server.cpu_us.append((after - before) / answered * 1e6)
            log(f"  {server.name:28} {rps:8.0f} req/s")
    a, b = servers
    return statistics.median(rb / ra for ra, rb in zip(a.rps, b.rps, strict=True))


def summary(server: Server) -> str:
    cpu = f", {statistics.median(server.cpu_us):.0f} us CPU/request" if server.cpu_us else ""
    return f"median {statistics.median(server.rps):.0f} req/s{cpu}, runs {[round(r) for r in server.rps]}"
