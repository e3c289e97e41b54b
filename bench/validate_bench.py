"""How long scripts/validate_structure.py takes on a project of many modules.

Renders a project from this repository's working tree (with the example module
`users`), clones `users` into N modules (`m000`..; each uses the previous one's
services, declared in its settings.py, so the import graph has edges), then runs the validator several times.
Prints the median time the validator reports for its own work and the median
wall time of the whole command (interpreter start included), then the per-rule
split. A benchmark, not a test: it prints figures and asserts nothing. The goal
is under 3 s for 100 modules.

    uv run python bench/validate_bench.py [--modules 100] [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import render, run, snapshot_template  # noqa: E402

LINK = """\
from fastapi import APIRouter

from modules.{used}.schemas import {model}Read
from modules.{used}.services import {snake}_service
from src.core.db import SessionDep

router = APIRouter(prefix="/links")


@router.get("/{{item_id}}")
async def linked(item_id: int, session: SessionDep) -> {model}Read | None:
    return await {snake}_service.get(session=session, {snake}_id=item_id)
"""


def clone_modules(root: Path, count: int) -> list[str]:
    """Copies of modules/users renamed to m000.., each linked to the previous one through its services."""
    source = root / "modules" / "users"
    names = [f"m{i:03d}" for i in range(count)]
    word = re.compile(r"\busers\b")
    for index, name in enumerate(names):
        target = root / "modules" / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".copier-answers.yml"))
        for path in target.rglob("*"):
            if path.is_file() and path.suffix in {".py", ".ini", ".mako", ".md"}:
                text = path.read_text()
                path.write_text(word.sub(name, text).replace("modules.users.", f"modules.{name}."))
        if index:
            model, snake = _model_of(source)
            (target / "routes" / "links.py").write_text(LINK.format(used=names[index - 1], model=model, snake=snake))
            settings = target / "settings.py"  # declared, as the DEP rules want
            settings.write_text(settings.read_text().replace("= ()", f'= ("{names[index - 1]}",)', 1))
    return names


def _model_of(module: Path) -> tuple[str, str]:
    """The example module's model class and its file's name (`User`, `user`)."""
    for path in sorted((module / "models").glob("*.py")):
        match = re.search(r"^class (\w+)\(Base\):", path.read_text(), re.MULTILINE)
        if match and path.stem != "__init__":
            return match.group(1), path.stem
    raise SystemExit("no model found in modules/users/models/")


def time_runs(root: Path, runs: int) -> tuple[list[float], list[float], dict[str, object]]:
    python = root / ".venv" / "bin" / "python"
    inner, wall, report = [], [], {}
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(
            [python, "scripts/validate_structure.py", "--format", "json"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        wall.append(time.perf_counter() - started)
        report = json.loads(result.stdout)
        inner.append(float(report["seconds"]))
    return inner, wall, report


def rule_split(root: Path) -> dict[str, float]:
    """Seconds per rule, measured in one process (each rule after the files are parsed once)."""
    code = (
        "import json, sys, time\n"
        "sys.path.insert(0, 'scripts')\n"
        "from pathlib import Path\n"
        "from validation import RULES\n"
        "from validation.project import Project\n"
        "p = Project(Path('.').resolve()); t = time.perf_counter(); list(p.all_sources())\n"
        "out = {'parse': time.perf_counter() - t}\n"
        "for name, check in RULES.items():\n"
        "    t = time.perf_counter(); check(p); out[name] = time.perf_counter() - t\n"
        "print(json.dumps(out))\n"
    )
    result = run([root / ".venv" / "bin" / "python", "-c", code], root)
    return {k: float(v) for k, v in json.loads(result.stdout).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="render into this folder and leave it there")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="validate_bench_"))
    try:
        template = snapshot_template(work / "template")
        root = args.keep or work / "my_api"
        if root.exists():
            shutil.rmtree(root)
        render(template, root, auth="keycloak", with_example_module=True)
        run(["uv", "sync", "--quiet"], root)
        names = clone_modules(root, args.modules)
        files = sum(1 for _ in (root / "modules").rglob("*.py"))
        inner, wall, report = time_runs(root, args.runs)
        findings = report["findings"]
        print(f"project: {len(names) + 1} modules, {files} Python files under modules/")
        print(f"findings: {len(findings) if isinstance(findings, list) else findings}")
        print(f"validator work: median {statistics.median(inner):.2f} s (runs: {', '.join(f'{t:.2f}' for t in inner)})")
        print(f"whole command:  median {statistics.median(wall):.2f} s (runs: {', '.join(f'{t:.2f}' for t in wall)})")
        split = rule_split(root)
        print("per rule (s): " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in split.items()))
        print(f"validate_structure_seconds_{len(names) + 1}_modules: {statistics.median(wall):.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
