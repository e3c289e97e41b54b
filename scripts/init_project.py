#!/usr/bin/env python3
"""Create a new fastapi-enterprise project from this template (the seed's interface).

    python3 scripts/init_project.py --name my_api --auth keycloak --with-example-module
    python3 scripts/init_project.py --name my_api --auth rbac --with-example-module --serve

Renders into OUTPUT_DIR/NAME with Copier (the name rules are hooks/names.py's,
as copier.yml's validators), then prints what to run next; `--serve` also
installs, migrates and serves the project on the embedded defaults (SQLite,
in-memory cache). Any Python 3.11+ runs it: without copier or uv, it sets up
this repository's `.venv` first and runs there (scripts/bootstrap.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bootstrap import BIN, TEMPLATE, clean_env, ensure_tools

sys.path.insert(0, str(TEMPLATE / "hooks"))
from names import project_name_problem  # hooks/ is not a package: found through sys.path

# The user's PATH and VIRTUAL_ENV, as they were before bootstrap.py changed them for its re-run.
ORIGINAL_PATH, ORIGINAL_VENV = "FASTAPI_ENTERPRISE_USER_PATH", "FASTAPI_ENTERPRISE_USER_VENV"


def fail(message: str, code: int = 2) -> None:
    print(f"init_project: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="project name: lowercase letters, digits, underscores")
    parser.add_argument(
        "--auth",
        required=True,
        choices=["keycloak", "rbac"],
        help="keycloak: JWT from an external identity provider; rbac: users, roles, permissions in the app's DB",
    )
    parser.add_argument("--with-example-module", action="store_true", help="add the example module `users`")
    parser.add_argument("--with-tracing", action="store_true", help="add optional OpenTelemetry tracing")
    parser.add_argument("--description", default="A modular FastAPI service")
    parser.add_argument("--output-dir", type=Path, default=Path.cwd(), help="parent folder (default: current folder)")
    parser.add_argument("--vcs-ref", default="HEAD", help="template git ref to render (default: HEAD)")
    parser.add_argument("--keycloak-server-url", help="Keycloak base URL (keycloak mode)")
    parser.add_argument("--keycloak-realm", help="Keycloak realm (keycloak mode; default: the project name)")
    parser.add_argument("--keycloak-client-id", help="client id / audience (keycloak mode)")
    parser.add_argument("--serve", action="store_true", help="then install, migrate and serve it on port 8000")
    parser.add_argument("--port", type=int, default=8000)
    return parser.parse_args(argv)


def check_name(name: str) -> None:
    if problem := project_name_problem(name):
        fail(f"--name {problem}")


def check_destination(destination: Path) -> None:
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        fail(f"{destination} already exists and is not empty; choose another --name or --output-dir")


def answers(args: argparse.Namespace) -> dict[str, object]:
    data: dict[str, object] = {
        "template_kind": "project",
        "project_name": args.name,
        "description": args.description,
        "auth": args.auth,
        "with_example_module": args.with_example_module,
        "with_tracing": args.with_tracing,
    }
    if args.auth == "keycloak":
        for key in ("keycloak_server_url", "keycloak_realm", "keycloak_client_id"):
            if getattr(args, key):
                data[key] = getattr(args, key)
    return data


def resolve_ref(vcs_ref: str) -> str:
    """Turn `HEAD` into its commit, so that uncommitted files never reach the project.

    Given the literal `HEAD` of a dirty checkout, Copier renders a temporary
    commit of the working tree and records it as `_commit`: a commit no one
    else has, so `create_module.py` and `copier update` fail later.
    """
    if vcs_ref != "HEAD" or not (TEMPLATE / ".git").exists():
        return vcs_ref
    git = ["git", "-C", str(TEMPLATE)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    if not commit:
        return vcs_ref
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=False
    )
    if dirty.stdout.strip():
        print("init_project: note: uncommitted template changes are not rendered; commit them first", file=sys.stderr)
    return commit


def render(destination: Path, data: dict[str, object], vcs_ref: str) -> None:
    import copier  # ensure_tools() made sure it is importable

    try:
        copier.run_copy(str(TEMPLATE), str(destination), data=data, defaults=True, unsafe=True, vcs_ref=vcs_ref)
    except (ValueError, copier.errors.CopierError) as exc:  # validators speak through ValueError
        fail(str(exc).strip() or type(exc).__name__)


def serve(project: Path, port: int) -> None:
    env = clean_env()
    uv = shutil.which("uv", path=env["PATH"])
    if uv is None:
        fail("uv is not installed: run `python3 scripts/bootstrap.py uv --version`, then serve from the project")
    subprocess.run([uv, "sync", "--quiet"], cwd=project, env=env, check=True)
    if (project / "scripts" / "run_migrations.py").is_file():
        subprocess.run([uv, "run", "python", "scripts/run_migrations.py", "--all"], cwd=project, env=env, check=True)
    print(f"\nServing on http://127.0.0.1:{port} (docs: /docs). Ctrl-C stops.\n", flush=True)
    # exec, so that Ctrl-C and SIGTERM reach the server itself.
    os.chdir(project)
    os.execve(uv, [uv, "run", "uvicorn", "src.app:app", "--host", "127.0.0.1", "--port", str(port)], env)


def template_version(destination: Path) -> str:
    """What the project records as its template version, in words (README: "Versions")."""
    answers = (destination / ".copier-answers.yml").read_text(encoding="utf-8").splitlines()
    commit = next((line.split(":", 1)[1].strip(" '\"") for line in answers if line.startswith("_commit:")), "")
    if commit.startswith("v") and commit[1:2].isdigit() and "-g" not in commit:
        return f"Template version: release {commit}."
    return f"Template version: commit {commit} (no release tag yet: modules and updates go by commit)."


def next_steps(destination: Path) -> str:
    """What to run next, with uv as the user's own shell will find it."""
    lines = [f"Created {destination}", template_version(destination), "", "Next:", f"  cd {destination}"]
    if shutil.which("uv", path=os.environ.get(ORIGINAL_PATH, os.environ.get("PATH", ""))) is None:
        lines.append(f'  export PATH="{BIN}:$PATH"   # uv and copier, set up by this script')
    lines += ["  uv sync", "  uv run python scripts/run_migrations.py --all", "  uv run uvicorn src.app:app --reload"]
    if venv := os.environ.get(ORIGINAL_VENV):
        lines.append(f"(`deactivate` first: with {venv} active, uv warns that it is not the project's .venv)")
    return "\n".join(["", *lines, ""])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    check_name(args.name)
    destination = (args.output_dir / args.name).resolve()
    check_destination(destination)
    os.environ.setdefault(ORIGINAL_PATH, os.environ.get("PATH", ""))
    os.environ.setdefault(ORIGINAL_VENV, os.environ.get("VIRTUAL_ENV", ""))
    ensure_tools(need_copier=True)
    render(destination, answers(args), resolve_ref(args.vcs_ref))
    if args.serve:
        print(template_version(destination), flush=True)
        serve(destination, args.port)
        return
    print(next_steps(destination))


if __name__ == "__main__":
    main()
