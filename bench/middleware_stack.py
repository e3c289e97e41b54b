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
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from serving import alternate, cpus, ensure_wrk, log, project_env, summary, uvicorn  # noqa: E402

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
    return dst


def profile(pid: int, port: int, args: argparse.Namespace, wrk: str, wrk_cpu: int | None) -> None:
    """Sample the stack server with py-spy while wrk loads it (profile before optimising)."""
    from serving import wrk_run

    spy = shutil.which("py-spy") or str(Path.home() / ".local" / "bin" / "py-spy")
    if not Path(spy).exists():
        log("py-spy not found (uv tool install py-spy): no profile recorded")
        return
    recorder = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(args.duration), "--rate", "500", "-o", str(args.profile)]
    )
    wrk_run(wrk, f"http://127.0.0.1:{port}{ENDPOINT}", args.duration + 1, args.connections, wrk_cpu)
    recorder.wait(timeout=args.duration + 30)
    log(f"flame graph of the stack under load: {args.profile}")


def measure(project: Path, args: argparse.Namespace) -> float:
    """Serve both apps from `project` and return the median per-round ratio stack / bare."""
    wrk = ensure_wrk()
    server_cpu, wrk_cpu = cpus()
    (project / "bench_bare.py").write_text(BARE_APP)
    (project / "bench_stack.py").write_text(STACK_APP)
    (project / "data").mkdir(exist_ok=True)
    env = project_env(project)
    with tempfile.TemporaryDirectory(prefix="bench_stack_") as logs:
        with (
            uvicorn(project, "bench_bare:app", env, Path(logs) / "bare.log", server_cpu) as bare,
            uvicorn(project, "bench_stack:app", env, Path(logs) / "stack.log", server_cpu) as stack,
        ):
            bare.name, stack.name = "bare", "stack"
            log("middleware_stack_vs_bare:")
            ratio = alternate(
                (bare, stack),
                ENDPOINT,
                wrk=wrk,
                rounds=args.rounds,
                duration=args.duration,
                connections=args.connections,
                cpu=wrk_cpu,
                warmup=args.warmup,
            )
            for server in (bare, stack):
                log(f"  {server.name}: {summary(server)}")
            if getattr(args, "profile", None):
                profile(stack.pid, stack.port, args, wrk, wrk_cpu)
        access_lines = sum(1 for line in (Path(logs) / "stack.log").read_text().splitlines() if '"request"' in line)
    b, s = statistics.median(bare.rps), statistics.median(stack.rps)
    log(f"per-request cost of the stack: {(1 / s - 1 / b) * 1e6:.1f} us on {1e6 / b:.1f} us")
    log(f"access lines written by the stack: {access_lines}")
    return ratio


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
    workdir = Path(tempfile.mkdtemp(prefix="bench_stack_"))
    try:
        project = (
            args.project.resolve() if args.project else render_project((args.keep or workdir / "bench_api").resolve())
        )
        print(f"middleware_stack_vs_bare: {measure(project, args):.2f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
