"""Post-copy hook of the project template (standard library only).

Runs with Copier's interpreter in the new project's folder, on `copier copy`
only (see copier.yml). It renders the example module through the module
template, so that module updates like any other, then locks dependencies.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path


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
    lines = answers.read_text(encoding="utf-8").splitlines()
    fixed = [f"_src_path: {src}" if line.startswith("_src_path:") else line for line in lines]
    answers.write_text("\n".join(fixed) + "\n", encoding="utf-8")


def lock_dependencies() -> None:
    uv = shutil.which("uv")
    if uv is None:
        say("uv is not installed, so no uv.lock was written: `pip install uv`, then `uv lock` in this folder")
        return
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    result = subprocess.run([uv, "lock", "--quiet"], check=False, env=env)
    if result.returncode != 0:
        say("`uv lock` failed (no network?); run it again in this folder before `uv sync`")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkout", required=True)
    parser.add_argument("--ref", required=True)
    parser.add_argument("--src", required=True)
    parser.add_argument("--with-example-module", default="False")
    args = parser.parse_args()
    if args.with_example_module.lower() == "true":
        render_example_module(args.checkout, args.ref, args.src)
    lock_dependencies()


if __name__ == "__main__":
    main()
