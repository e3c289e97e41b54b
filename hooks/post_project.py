"""Post-copy hook of the project template (standard library only).

Runs with Copier's interpreter in the new project's folder, on `copier copy`
only (see copier.yml). It records a local template by its absolute path,
keeps a project rendered inside the template's own checkout out of that
checkout's `git status`, renders the example module through the module
template (so that module updates like any other), then locks dependencies.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = Path(".copier-answers.yml")
# Words of uv's errors that come from the network (DNS, connect, TLS, timeouts), not from the project.
NETWORK = re.compile(r"Failed to fetch|error sending request|dns error|tcp connect|timed out|certificate|offline", re.I)


def say(message: str) -> None:
    print(f"[fastapi-enterprise] {message}", file=sys.stderr)


def render_example_module(checkout: str, ref: str, src: str) -> None:
    """Render `users` from Copier's checkout of this very template version.

    The checkout is a temporary clone, so the module's answers file is then
    pointed at the project's own template source: `copier update` on the
    module must find the same repository the project came from.
    """
    target = Path("modules") / "users"
    answers = target / ".copier-answers.yml"
    if answers.is_file():
        say("modules/users already exists; leaving it as it is")
        return
    command = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--quiet", "--vcs-ref", ref]
    command += ["-d", "template_kind=module", "-d", "module_name=users", "-d", "example=true", checkout, str(target)]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise SystemExit(f"could not render the example module (copier exited {result.returncode})")
    set_source(answers, src)


def set_source(answers: Path, src: str) -> None:
    """Point an answers file's `_src_path` at `src`."""
    lines = answers.read_text(encoding="utf-8").splitlines()
    fixed = [f"_src_path: {src}" if line.startswith("_src_path:") else line for line in lines]
    answers.write_text("\n".join(fixed) + "\n", encoding="utf-8")


def lock_dependencies() -> None:
    uv = shutil.which("uv")
    if uv is None:
        say("uv is not installed, so no uv.lock was written: install uv, then run `uv lock` in this folder")
        return
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["UV_NO_PROGRESS"] = "1"
    result = subprocess.run([uv, "lock", "--quiet"], check=False, env=env, capture_output=True, text=True)
    if result.returncode == 0:
        return
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    said = "; ".join(lines[:4]) or f"exit status {result.returncode}"
    cause = " (no network?)" if NETWORK.search(result.stderr) else ""
    say(f"`uv lock` failed{cause}: {said}")
    say("fix that, then run `uv lock` in this folder before `uv sync`")


def absolute_source(src: str, dst: str) -> str | None:
    """The template's absolute path when `src` is a relative local path, else None.

    Copier records `_src_path` as typed (`copier copy . ../my_api` records `.`),
    and reads it back relative to wherever `copier update` runs: from inside
    the project, `.` would be the project itself. Both paths were relative to
    the same folder; this folder is `dst` resolved, so that folder is found by
    walking `dst` back up.
    """
    if "://" in src or src.startswith(("gh:", "gl:", "git@")) or Path(src).expanduser().is_absolute():
        return None
    start: Path | None = Path.cwd()
    if Path(dst).is_absolute() or ".." in Path(dst).parts:
        start = Path(os.environ["PWD"]) if "PWD" in os.environ else None
    else:
        for _ in Path(dst).parts:
            start = start.parent if start else None
    candidate = (start / src).resolve() if start else None
    return str(candidate) if candidate and (candidate / "copier.yml").is_file() else None


def keep_out_of_template_checkout(src: str) -> None:
    """A project rendered inside the template's checkout must not make that checkout dirty.

    Copier renders a dirty local template from a temporary commit and records
    that commit, which exists nowhere else: every later `copier copy`, `copier
    update` and create_module.py from that checkout would break. The folder is
    listed in the checkout's own `.git/info/exclude` (never committed, never shared).
    """
    template = Path(src).expanduser()
    here = Path.cwd().resolve()
    if not template.is_absolute() or not template.is_dir() or not here.is_relative_to(template.resolve()):
        return
    ask = ["git", "-C", str(template), "rev-parse"]
    top = subprocess.run([*ask, "--show-toplevel"], capture_output=True, text=True, check=False)
    exclude = subprocess.run([*ask, "--git-path", "info/exclude"], capture_output=True, text=True, check=False)
    if top.returncode != 0 or exclude.returncode != 0:
        return
    entry = "/" + here.relative_to(Path(top.stdout.strip()).resolve()).as_posix() + "/"
    path = Path(exclude.stdout.strip())
    path = path if path.is_absolute() else template / path
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    if entry not in lines:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([*lines, entry]) + "\n", encoding="utf-8")
        say(f"{entry} is inside the template's checkout: listed in its .git/info/exclude, so the checkout stays clean")


def write_modules_summary() -> None:
    """docs/modules-summary.md from the modules just rendered (the project's own describe code: stdlib only)."""
    sys.dont_write_bytecode = True  # no __pycache__ left in the new project
    sys.path.insert(0, str(Path("scripts").resolve()))
    try:
        from validation.describe import write  # the rendered project's scripts/validation/describe.py

        write(Path.cwd())
    except Exception as exc:  # an older Python than the project's: the project's own test says what to run
        say(f"docs/modules-summary.md not written ({type(exc).__name__}: {exc}); in the project run")
        say("  uv run python scripts/validate_structure.py --describe --write")
    finally:
        sys.path.pop(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkout", required=True)
    parser.add_argument("--ref", required=True)
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", default=".")
    parser.add_argument("--with-example-module", default="False")
    args = parser.parse_args()
    src = args.src
    if (found := absolute_source(args.src, args.dst)) is not None and ANSWERS.is_file():
        src = found
        set_source(ANSWERS, src)
    keep_out_of_template_checkout(src)
    if args.with_example_module.lower() == "true":
        render_example_module(args.checkout, args.ref, src)
    write_modules_summary()
    lock_dependencies()


if __name__ == "__main__":
    main()
