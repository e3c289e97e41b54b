"""After every `copier update` (standard library only): report conflicts, re-lock dependencies.

Copier runs this as an unversioned `_migrations` step (see copier.yml), which
means: once per update, in the real destination, after it has replayed the
user's edits on the new template version. (`_tasks` would be too early: on
update they run before that replay, and also in two temporary copies.)

- It names the files left with conflicts, so no update ends half-merged in
  silence (Copier itself only marks them in git's index).
- In a project whose pyproject.toml changed, it runs `uv lock`, so uv.lock holds
  both the template's new dependencies and the user's own. Nothing changed:
  nothing runs, so updating a current project changes nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

MARKERS = ("<<<<<<< ", ">>>>>>> ")


def say(message: str) -> None:
    print(f"[fastapi-enterprise] {message}", file=sys.stderr)


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def in_git_work_tree() -> bool:
    """False in a folder Copier renders for comparison (never a git repository when tasks run)."""
    return git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"


def conflicted_files() -> list[str]:
    """Paths (relative to this folder) left unmerged in the index, or with a `.rej` beside them."""
    unmerged = git("diff", "--name-only", "--relative", "--diff-filter=U").stdout.split()
    status = git("status", "--porcelain", "--ignored", "--untracked-files=all", "--", ".").stdout.splitlines()
    git_root = Path(git("rev-parse", "--show-toplevel").stdout.strip())
    here = Path.cwd().resolve()
    rejected = []
    for line in status:
        path = line[3:]
        if line[:2] in ("??", "!!") and path.endswith(".rej"):
            rejected.append(os.path.relpath(git_root / path[: -len(".rej")], here))
    return sorted({*unmerged, *rejected})


def has_markers(path: Path) -> bool:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.startswith(MARKERS) for line in lines)


def relock() -> None:
    """`uv lock` when pyproject.toml differs from the last commit (the update changed it)."""
    pyproject = Path("pyproject.toml")
    if not pyproject.is_file():
        return
    if git("diff", "--quiet", "HEAD", "--", "pyproject.toml").returncode == 0:
        return
    if has_markers(pyproject):
        say("pyproject.toml has conflicts: resolve them, then run `uv lock` (uv.lock was left as it was)")
        return
    uv = shutil.which("uv")
    if uv is None:
        say("pyproject.toml changed but uv is not installed: run `uv lock` before `uv sync`")
        return
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["UV_NO_PROGRESS"] = "1"
    result = subprocess.run([uv, "lock", "--quiet"], check=False, env=env)
    if result.returncode != 0:
        say("`uv lock` failed after the update (no network?): run it again before `uv sync`")
    else:
        say("pyproject.toml changed: uv.lock re-locked")


def answered_kind() -> str:
    """`template_kind` from the answers file here (a line `template_kind: module`), else project."""
    answers = Path(".copier-answers.yml")
    lines = answers.read_text(encoding="utf-8").splitlines() if answers.is_file() else []
    return "module" if "template_kind: module" in (line.strip() for line in lines) else "project"


def main() -> None:
    parser = argparse.ArgumentParser()
    # Empty in the `before` stage: Copier has not loaded the answers yet.
    parser.add_argument("--kind", choices=["project", "module", ""], default="")
    args = parser.parse_args()
    args.kind = args.kind or answered_kind()
    if not in_git_work_tree():
        return
    conflicts = conflicted_files()
    if conflicts:
        where = "this project" if args.kind == "project" else f"module {Path.cwd().name}"
        say(f"the update left conflicts in {where}: " + ", ".join(conflicts))
        say(
            "edit each file: keep what you want between <<<<<<< before updating / ======= / "
            ">>>>>>> after updating, delete the markers (and any .rej file), `git add` it, commit "
            "(docs/updating.md)"
        )
    if args.kind == "project":
        relock()


if __name__ == "__main__":
    main()
