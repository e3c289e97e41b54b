"""Run one template version's migration step on an existing project or module (standard library only).

A release with a breaking change (a file moved, a setting renamed, a layout
change that a three-way merge cannot express) ships `hooks/migrations/v<X_Y_Z>.py`
and one `_migrations` entry in copier.yml:

    - version: "0.2.0"
      command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/hooks/migrate.py",
                "0.2.0", "--stage={{ _stage }}", "--kind={{ template_kind }}"]
      when: "{{ true }}"

Copier runs it once per update that crosses 0.2.0 (old < 0.2.0 <= new), twice:
`before` (in the project, before the new version is rendered and the user's
edits replayed) and `after` (once the update is done). The step module defines
any of `before_project`, `after_project`, `before_module`, `after_module`: each
takes the destination folder, returns a line saying what it did (or None), and
must be idempotent (look first, change only what is not yet right), since a
user may run an update again after resolving a conflict.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

STEPS = Path(__file__).resolve().parent / "migrations"


def say(message: str) -> None:
    print(f"[fastapi-enterprise] {message}", file=sys.stderr)


def in_git_work_tree() -> bool:
    result = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True, check=False)
    return result.stdout.strip() == "true"


def answered_kind() -> str:
    """`template_kind` from the answers file here (a line `template_kind: module`), else project."""
    answers = Path(".copier-answers.yml")
    lines = answers.read_text(encoding="utf-8").splitlines() if answers.is_file() else []
    return "module" if "template_kind: module" in (line.strip() for line in lines) else "project"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("version", help="the release whose step runs, e.g. 0.2.0")
    parser.add_argument("--stage", choices=["before", "after"], required=True)
    # Empty in the `before` stage: Copier has not loaded the answers yet.
    parser.add_argument("--kind", choices=["project", "module", ""], default="")
    args = parser.parse_args()
    args.kind = args.kind or answered_kind()
    if not re.fullmatch(r"\d+(\.\d+)*", args.version):
        raise SystemExit(f"migration version {args.version!r} must look like 0.2.0")
    # Copier runs migrations in the real destination only; a temporary copy is never a git repository.
    if not in_git_work_tree():
        return
    path = STEPS / f"v{args.version.replace('.', '_')}.py"
    if not path.is_file():
        raise SystemExit(f"copier.yml names migration {args.version}, but {path.name} is missing from hooks/migrations")
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(step)
    function = getattr(step, f"{args.stage}_{args.kind}", None)
    if function is None:
        return
    done = function(Path.cwd())
    if done:
        say(f"migration {args.version} ({args.stage}, {args.kind} {Path.cwd().name}): {done}")


if __name__ == "__main__":
    main()
