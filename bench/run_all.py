"""Every figure of the performance table, one `name: value` line each (docs/performance.md).

Renders projects from this repository's working tree (committed or not), then:

1. the request path: the example module's authenticated GET against the minimal app
   (bench/minimal_app.py), cache in memory, on Redis, and off (bench/request_path.py),
   and the middleware stack against bare FastAPI (bench/middleware_stack.py);
   each a ratio of two servers measured side by side, alternating A B A B;
2. start-up for 0/10/50/100 modules, per module, the bare import of the dependencies,
   idle memory, migrations and validation of 100 modules (bench/project_scale.py);
3. the scripts: copier copy (and its hooks), create_module, update_modules;
4. the generated project's own test suite (SQLite).

A benchmark, not a test: it prints figures and asserts nothing. About 10-15 minutes on
2 cores; PostgreSQL and Redis on 127.0.0.1 give the figures that need them (said when absent).

    uv run python bench/run_all.py [--quick] [--only request,middleware,scale,scripts,pytest]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import middleware_stack  # noqa: E402
import project_scale  # noqa: E402
import request_path  # noqa: E402

from tests.helpers import render, run, snapshot_template  # noqa: E402

PARTS = ("request", "middleware", "scale", "scripts", "pytest")


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    return f"{cpu}, {shutil.os.cpu_count()} cores, Python {platform.python_version()}, load {load} at start"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="tiny parameters: checks the benchmark runs, figures are rough"
    )
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--keep", type=Path, help="work in this folder and leave it there")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if unknown := parts - set(PARTS):
        sys.exit(f"unknown parts: {', '.join(sorted(unknown))}")
    quick = args.quick
    load = argparse.Namespace(
        rounds=2 if quick else 6,
        duration=1 if quick else 3,
        connections=32,
        warmup=1 if quick else 2,
        runs=1 if quick else 3,
        sizes=[0, 2] if quick else [0, 10, 50, 100],
    )
    print(f"machine: {machine()}", flush=True)
    started = time.perf_counter()
    work = (args.keep or Path(tempfile.mkdtemp(prefix="bench_all_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        template = snapshot_template(work / "template")
        if parts & {"request", "middleware", "scale"}:
            project = render(
                template, work / "bench_api", project_name="bench_api", auth="rbac", with_example_module=True
            )
            run(["uv", "sync", "--quiet"], project)
            if "request" in parts:
                request_path.measure(project, load)
            if "middleware" in parts:
                ratio = middleware_stack.measure(project, load)
                print(f"middleware_stack_vs_bare: {ratio:.2f}", flush=True)
            if "scale" in parts:
                project_scale.measure_modules(project, load)
        if "scripts" in parts:
            project_scale.measure_scripts(template, work, load.runs)
        if "pytest" in parts:
            project_scale.measure_pytest(template, work)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{exc}\n{(exc.stdout or '')[-2000:]}{(exc.stderr or '')[-2000:]}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"bench_total_s: {time.perf_counter() - started:.0f}", flush=True)


if __name__ == "__main__":
    main()
