"""Start-up, memory, migrations, validation and the scripts, on projects of 0 to 100 modules.

The modules are copies of the example module `users` (the largest a generated
module gets: CRUD routes, a cached service, a migration with indexes), renamed
m000.. (`bench/validate_bench.py`'s `clone_modules`), so that 100 of them take
seconds to make instead of 100 `copier copy` runs. One of each script is timed on
its own (`create_module_s`, `update_module_s`, `copy_project_s`).

- `startup_s_<n>`: process start to the first `/health` 200 under uvicorn, median of runs;
- `startup_per_module_ms`: (startup_s_100 - startup_s_0) / 100;
- `bare_import_s`: a process importing only the third-party modules the app has loaded
  once started (what any app on these libraries pays), interpreter start included;
- `rss_mb_idle_10`: resident memory of the idle app with 10 modules, after start-up;
- `migrate_all_s_100`: `scripts/run_migrations.py --all` on an empty PostgreSQL database;
- `validate_s_100`: `scripts/validate_structure.py`, whole command, median of runs;
- `create_module_s`, `update_module_s`: the project's scripts, one module each;
- `copy_project_s`, `copy_project_hooks_s`: `copier copy` of a project, and the part its
  post-copy hooks take (the same copy with and without tasks, alternated);
- `pytest_generated_s`: the generated project's own suite on SQLite.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from serving import free_port, log, project_env  # noqa: E402
from validate_bench import clone_modules  # noqa: E402

from tests.helpers import drop_postgres_database, fresh_postgres_database, render, run, service_available  # noqa: E402

# The third-party modules a started app has loaded, as `python -c` sees them after `import src.app`.
LOADED = """
import json, sys, sysconfig
import src.app
site = sysconfig.get_paths()["purelib"]
print(json.dumps(sorted(n for n, m in sys.modules.items() if (getattr(m, "__file__", None) or "").startswith(site))))
"""
IMPORT_ALL = "import importlib, json, sys\nfor name in json.loads(sys.argv[1]):\n    importlib.import_module(name)\n"


def timed(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run([str(c) for c in command], cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def scale_project(root: Path, count: int) -> list[str]:
    """`count` copies of `users`; every table, index and constraint renamed, so they migrate side by side."""
    names = clone_modules(root, count)
    for name in names:
        for path in (root / "modules" / name / "alembic").rglob("*.py"):
            path.write_text(path.read_text().replace("users", name))
    return names


def use_modules(root: Path, names: list[str], keep: int) -> None:
    """Leave `keep` modules in modules/ (`users`, then its copies), besides the built-in ones; park the others."""
    parked = root / "parked"
    parked.mkdir(exist_ok=True)
    for index, name in enumerate(["users", *names]):
        inside, outside = root / "modules" / name, parked / name
        wanted = index < keep
        if wanted and outside.exists():
            outside.rename(inside)
        elif not wanted and inside.exists():
            inside.rename(outside)


def start_once(root: Path, env: dict[str, str]) -> tuple[float, subprocess.Popen[bytes], int]:
    """Seconds from process start to the first /health 200; the still running server and its port."""
    port = free_port()
    started = time.perf_counter()
    command = [root / ".venv" / "bin" / "uvicorn", "src.app:app", "--port", str(port), "--log-level", "warning"]
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen([str(c) for c in command], cwd=root, env=env, stdout=quiet, stderr=quiet)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started, proc, port
        except OSError:
            time.sleep(0.005)


def startup(root: Path, env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        seconds, proc, _ = start_once(root, env)
        proc.terminate()
        proc.wait(timeout=30)
        times.append(seconds)
    return statistics.median(times)


def idle_rss_mb(root: Path, env: dict[str, str]) -> float:
    _, proc, _ = start_once(root, env)
    try:
        time.sleep(2)  # the background migration check and the first flushes have settled
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bare_import(root: Path, env: dict[str, str], runs: int) -> float:
    python = root / ".venv" / "bin" / "python"
    loaded = subprocess.run([python, "-c", LOADED], cwd=root, env=env, check=True, capture_output=True, text=True)
    names = loaded.stdout.strip().splitlines()[-1]
    return statistics.median(timed([python, "-c", IMPORT_ALL, names], BENCH, env) for _ in range(runs))


def measure_modules(root: Path, args: object) -> dict[str, float]:
    """Start-up, memory, migrations and validation on `root` (rendered with the example module)."""
    runs = int(getattr(args, "runs", 3))
    sizes = [int(n) for n in getattr(args, "sizes", [0, 10, 50, 100])]
    figures: dict[str, float] = {}
    names = scale_project(root, max(sizes))
    env = project_env(root, APP_LOGGING__LEVEL="WARNING")
    (root / "data").mkdir(exist_ok=True)
    subprocess.run(
        [root / ".venv" / "bin" / "python", "scripts/run_migrations.py", "--all"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    for n in sizes:
        use_modules(root, names, n)
        figures[f"startup_s_{n}"] = startup(root, env, runs)
        print(f"startup_s_{n}: {figures[f'startup_s_{n}']:.2f}", flush=True)
        if n == 10:
            figures["rss_mb_idle_10"] = idle_rss_mb(root, env)
            print(f"rss_mb_idle_10: {figures['rss_mb_idle_10']:.0f}", flush=True)
    low, high = min(sizes), max(sizes)
    if high > low:
        figures["startup_per_module_ms"] = (
            (figures[f"startup_s_{high}"] - figures[f"startup_s_{low}"]) / (high - low) * 1000
        )
        print(f"startup_per_module_ms: {figures['startup_per_module_ms']:.1f}", flush=True)
    use_modules(root, names, 0)
    figures["bare_import_s"] = bare_import(root, env, runs)
    print(f"bare_import_s: {figures['bare_import_s']:.2f}", flush=True)

    use_modules(root, names, high)
    if service_available("postgres") is None:
        url = fresh_postgres_database()
        try:
            figures[f"migrate_all_s_{high}"] = timed(
                [root / ".venv" / "bin" / "python", "scripts/run_migrations.py", "--all"],
                root,
                {**env, "DATABASE_URL": url},
            )
            print(f"migrate_all_s_{high}: {figures[f'migrate_all_s_{high}']:.2f}", flush=True)
        finally:
            drop_postgres_database(url)
    else:
        log("PostgreSQL not reachable: no migrate_all figure")
    validate = [root / ".venv" / "bin" / "python", "scripts/validate_structure.py", "--format", "json"]
    figures[f"validate_s_{high}"] = statistics.median(timed(validate, root, env) for _ in range(runs))
    print(f"validate_s_{high}: {figures[f'validate_s_{high}']:.2f}", flush=True)
    use_modules(root, names, 1)  # as rendered: the example module only
    return figures


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", message], repo)


def measure_scripts(template: Path, work: Path, runs: int) -> dict[str, float]:
    """The project's scripts and `copier copy`, on fresh renders of `template` (a snapshot with a commit)."""
    import copier

    figures: dict[str, float] = {}
    copies: dict[str, list[float]] = {"with": [], "without": []}
    for index in range(runs):
        for kind in ("with", "without") if index % 2 == 0 else ("without", "with"):
            dst = work / f"copy_{kind}_{index}"
            started = time.perf_counter()
            copier.run_copy(
                str(template),
                str(dst),
                data={"project_name": "my_api", "auth": "rbac", "with_example_module": True},
                defaults=True,
                unsafe=True,
                vcs_ref="HEAD",
                quiet=True,
                skip_tasks=kind == "without",
            )
            copies[kind].append(time.perf_counter() - started)
            if kind == "without" or index:
                shutil.rmtree(dst)
    figures["copy_project_s"] = statistics.median(copies["with"])
    figures["copy_project_hooks_s"] = figures["copy_project_s"] - statistics.median(copies["without"])
    project = work / "copy_with_0"
    run(["uv", "sync", "--quiet"], project)
    run(["git", "init", "-q", "-b", "main"], project)
    commit(project, "project")
    python = project / ".venv" / "bin" / "python"
    figures["create_module_s"] = timed([python, "scripts/create_module.py", "--name", "orders"], project)
    # A new template version for the module to move to: one changed line in the module template,
    # committed, and the project pinned to it (what `copier update` at the root would record).
    service = next((template / "module_template" / "services").glob("*not example*service.py*"))
    service.write_text(service.read_text() + "\n# A later template version.\n")
    commit(template, "a later template version")
    new = run(["git", "rev-parse", "HEAD"], template).stdout.strip()
    answers = project / ".copier-answers.yml"
    answers.write_text(re.sub(r"(?m)^_commit: .*$", f"_commit: {new}", answers.read_text()))
    commit(project, "orders, and the template version to update to")
    figures["update_module_s"] = timed([python, "scripts/update_modules.py", "--module", "orders"], project)
    changed = run(["git", "status", "--short"], project).stdout
    if "orders" not in changed:
        log(f"update_modules.py changed nothing in modules/orders: {changed!r}")
    for name in ("copy_project_s", "copy_project_hooks_s", "create_module_s", "update_module_s"):
        print(f"{name}: {figures[name]:.2f}", flush=True)
    return figures


def measure_pytest(template: Path, work: Path) -> dict[str, float]:
    project = render(template, work / "pytest_api", auth="rbac", with_example_module=True)
    run(["uv", "sync", "--quiet"], project)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    seconds = timed([project / ".venv" / "bin" / "pytest", "-q", "-p", "no:randomly"], project, env)
    print(f"pytest_generated_s: {seconds:.1f}", flush=True)
    return {"pytest_generated_s": seconds}


if __name__ == "__main__":
    sys.exit("run bench/run_all.py")
