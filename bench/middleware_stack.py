"""Throughput of the generated project's request stack against bare FastAPI.

Renders a project from this repository's working tree (wrk is installed with
apt-get when missing), then serves two apps side by side, each under uvicorn
with one worker (uvloop + httptools, the `uvicorn[standard]` defaults, and
`--no-access-log` for both):

- bare:  a plain `FastAPI()` with one trivial JSON endpoint;
- stack: the project's own `create_app()` (conversation ID, JSON access line,
  Prometheus metrics, and whatever else it installs, such as the auth
  middleware) with the same endpoint, matched first like in the bare app.

wrk (pinned to the other core when there are two) loads each app in turn,
alternating for several rounds so that drift on a shared machine hits both
alike. The last line printed is `middleware_stack_vs_bare: <ratio>`: the median
over rounds of stack / bare measured back to back. The server's CPU time per
request is printed as a cross-check that other load disturbs far less.
A benchmark, not a test: it prints figures and asserts nothing.

    uv run python bench/middleware_stack.py [--rounds 6] [--duration 5] [--keep DIR] [--profile out.svg]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENDPOINT = "/bench"

BARE_APP = f'''
from fastapi import FastAPI

app = FastAPI()


@app.get("{ENDPOINT}")
async def bench() -> dict[str, bool]:
    return {{"ok": True}}
'''

STACK_APP = f'''
from src.app import create_app

app = create_app()


@app.get("{ENDPOINT}")
async def bench() -> dict[str, bool]:
    return {{"ok": True}}


# Matched first, as in the bare app: the figure measures the request stack,
# not how many routes the project (health, metrics, modules) has before it.
app.router.routes.insert(0, app.router.routes.pop())
'''


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


def render_project(dst: Path) -> Path:
    import copier

    log(f"rendering the project template into {dst} ...")
    copier.run_copy(
        str(REPO),
        str(dst),
        data={"project_name": "bench_api", "auth": "rbac", "with_example_module": True},
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    subprocess.run(["uv", "sync", "--quiet", "--no-dev"], cwd=dst, check=True, env=env)
    (dst / "bench_bare.py").write_text(BARE_APP)
    (dst / "bench_stack.py").write_text(STACK_APP)
    return dst


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(project: Path, module: str, port: int, cpu: int | None, log_file: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    # Development configuration with production-like logging: JSON lines, INFO,
    # no debug. The access lines go to a file, as they would to a log shipper.
    env.update(
        CONFIG_ENV="development",
        APP_DEBUG="false",
        APP_LOGGING__FORMAT="json",
        APP_LOGGING__LEVEL="INFO",
        DATABASE_URL=f"sqlite+aiosqlite:///{project}/data/bench.db",
    )
    command = [
        str(project / ".venv" / "bin" / "uvicorn"),
        f"{module}:app",
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
    out = log_file.open("wb")
    proc = subprocess.Popen(command, cwd=project, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{module} exited with {proc.returncode}; see {log_file}:\n{log_file.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"{module} did not start within 30 s; see {log_file}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(wrk: str, port: int, duration: float, connections: int, cpu: int | None) -> tuple[float, int]:
    """Requests per second and requests answered."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{round(duration)}s", f"http://127.0.0.1:{port}{ENDPOINT}"]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if not match or not count or "Non-2xx" in output or "Socket errors" in output:
        sys.exit(f"unexpected wrk output:\n{output}")
    return float(match.group(1)), int(count.group(1))


def profile(pid: int, port: int, args: argparse.Namespace, wrk: str, wrk_cpu: int | None) -> None:
    """Sample the stack server with py-spy while wrk loads it (profile before optimising)."""
    spy = shutil.which("py-spy") or str(Path.home() / ".local" / "bin" / "py-spy")
    if not Path(spy).exists():
        log("py-spy not found (uv tool install py-spy): no profile recorded")
        return
    recorder = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(args.duration), "--rate", "500", "-o", str(args.profile)]
    )
    run_wrk(wrk, port, args.duration + 1, args.connections, wrk_cpu)
    recorder.wait(timeout=args.duration + 30)
    log(f"flame graph of the stack under load: {args.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="alternating measurements per app")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per app")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--project", type=Path, help="reuse an already rendered project instead of rendering one")
    parser.add_argument("--keep", type=Path, help="render into this folder and keep it")
    parser.add_argument("--profile", type=Path, help="also record a py-spy flame graph (SVG) of the stack under load")
    args = parser.parse_args()

    wrk = ensure_wrk()
    two_cores = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    server_cpu, wrk_cpu = (0, 1) if two_cores else (None, None)

    workdir = Path(tempfile.mkdtemp(prefix="bench_stack_"))
    try:
        if args.project:
            project = args.project.resolve()
            (project / "bench_bare.py").write_text(BARE_APP)
            (project / "bench_stack.py").write_text(STACK_APP)
        else:
            project = render_project((args.keep or workdir / "bench_api").resolve())
        (project / "data").mkdir(exist_ok=True)
        ports = {"bare": free_port(), "stack": free_port()}
        logs = {name: workdir / f"{name}.log" for name in ports}
        servers = {name: start_server(project, f"bench_{name}", ports[name], server_cpu, logs[name]) for name in ports}
        try:
            for port in ports.values():
                run_wrk(wrk, port, args.warmup, args.connections, wrk_cpu)
            results: dict[str, list[float]] = {"bare": [], "stack": []}
            # CPU time of the server per request: far less disturbed by other load on a
            # shared machine than throughput, so it cross-checks the headline figure.
            cpu_us: dict[str, list[float]] = {"bare": [], "stack": []}
            for round_no in range(1, args.rounds + 1):
                for name in ("bare", "stack") if round_no % 2 else ("stack", "bare"):
                    cpu_before = cpu_seconds(servers[name].pid)
                    rps, answered = run_wrk(wrk, ports[name], args.duration, args.connections, wrk_cpu)
                    cpu_after = cpu_seconds(servers[name].pid)
                    results[name].append(rps)
                    if cpu_before is not None and cpu_after is not None:
                        cpu_us[name].append((cpu_after - cpu_before) / answered * 1e6)
                    log(f"round {round_no} {name:5}: {rps:9.0f} req/s")
            if args.profile:
                profile(servers["stack"].pid, ports["stack"], args, wrk, wrk_cpu)
        finally:
            for proc in servers.values():
                proc.send_signal(signal.SIGINT)
            for proc in servers.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()

        access_lines = sum(1 for line in logs["stack"].read_text().splitlines() if '"request"' in line)
        bare, stack = statistics.median(results["bare"]), statistics.median(results["stack"])
        # Each round measures both apps back to back: the ratio within a round cancels the
        # slow drift of a shared machine, and the median over rounds drops the outliers.
        pairs = [s / b for b, s in zip(results["bare"], results["stack"], strict=True)]
        print(f"server cpu: {server_cpu}, wrk cpu: {wrk_cpu}, connections: {args.connections}")
        for name in ("bare", "stack"):
            runs = results[name]
            figures = f"median {statistics.median(runs):.0f}  best {max(runs):.0f}"
            print(f"{name:5} req/s: {figures}  runs {[round(r) for r in runs]}")
        print(f"per-round ratios: {[round(p, 2) for p in pairs]}")
        print(f"ratio of medians: {stack / bare:.2f}, of best runs: {max(results['stack']) / max(results['bare']):.2f}")
        print(f"per-request cost of the stack: {(1 / stack - 1 / bare) * 1e6:.1f} us on {1e6 / bare:.1f} us")
        if cpu_us["bare"] and cpu_us["stack"]:
            cpu_bare, cpu_stack = statistics.median(cpu_us["bare"]), statistics.median(cpu_us["stack"])
            print(
                f"server CPU per request: bare {cpu_bare:.1f} us, stack {cpu_stack:.1f} us "
                f"(+{cpu_stack - cpu_bare:.1f} us; CPU-time ratio {cpu_bare / cpu_stack:.2f})"
            )
        print(f"access lines written by the stack: {access_lines}")
        print(f"middleware_stack_vs_bare: {statistics.median(pairs):.2f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
