"""A newcomer's path, as the README and the seed write it, from a fresh clone of the template.

Each test is one user's sequence of commands, run as the user would run them:
the quick start and every command the README gives next from the same clone,
the quick start with Debian's system python3, the seed's own commands in the
seed's order, a project rendered from a dirty checkout, and a release.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.helpers import CI, free_port, run, served, uv

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
SYSTEM_PYTHON = Path("/usr/bin/python3")
VENV_WARNING = "does not match the project environment path"


def clone(template: Path, dst: Path) -> Path:
    """A fresh clone of the template, as `git clone` gives a newcomer (no tag on main)."""
    run(["git", "clone", "-q", template, dst], template.parent)
    return dst


def quick_start(python: str | Path, checkout: Path, port: int, env: dict[str, str] | None = None):
    """The README's first command, from the clone's folder (so the project lands in ./my_api)."""
    command = [python, "scripts/init_project.py", "--name", "my_api", "--auth", "rbac", "--with-example-module"]
    return served([*command, "--serve", "--port", str(port)], checkout, port, env=env)


def recorded(project: Path, key: str) -> str:
    return str(yaml.safe_load((project / ".copier-answers.yml").read_text())[key])


def commit_all(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run([*GIT, "commit", "-q", "-m", message], repo)


def test_quick_start_then_every_next_command_from_the_same_clone(template: Path, tmp_path: Path) -> None:
    checkout = clone(template, tmp_path / "fastapi-enterprise")
    port = free_port()
    with quick_start(sys.executable, checkout, port) as output:
        with pytest.raises(urllib.error.HTTPError) as refused:  # personal data: a signed-in user only
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/users/", timeout=5)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=5) as response:
            assert b"/api/v1/users" in response.read()
    assert "Serving on" in output[0]
    my_api = checkout / "my_api"
    # main has no tag: the project records the commit, and init_project says so.
    assert f"Template version: commit {recorded(my_api, '_commit')} (no release tag yet" in output[0]
    assert (my_api / "uv.lock").is_file()
    # The render and its .venv sit inside the clone, which must stay clean for the next render.
    assert run(["git", "status", "--porcelain"], checkout).stdout == ""

    # The README's next step: another project from the same clone, with Copier itself.
    copier = [sys.executable, "-m", "copier"]
    rendered = run([*copier, "copy", "--trust", "--defaults", "-d", "auth=keycloak", ".", "my_api2"], checkout)
    assert "Dirty template" not in rendered.stderr
    my_api2 = checkout / "my_api2"
    for project in (my_api, my_api2):
        commit = recorded(project, "_commit")
        run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], checkout)  # a commit the clone has
        assert recorded(project, "_src_path") == str(checkout)  # `.` would mean the project itself later
    assert run(["git", "status", "--porcelain"], checkout).stdout == ""

    # Untagged main: the commit is the version, and updates go by commit.
    run(["git", "init", "-q"], my_api2)
    commit_all(my_api2, "generated")
    uv(my_api2, "python", "scripts/create_module.py", "--name", "orders")
    commit_all(my_api2, "orders")
    (checkout / "CHANGELOG.md").write_text((checkout / "CHANGELOG.md").read_text() + "\nA maintainer's change.\n")
    commit_all(checkout, "a new template commit")
    updated = run([*copier, "update", "--trust", "--skip-answered", "--defaults"], my_api2)
    assert "Updating to template version 0.0.0.post" in updated.stderr, updated.stderr
    assert recorded(my_api2, "_commit") == run(["git", "rev-parse", "--short", "HEAD"], checkout).stdout.strip()
    commit_all(my_api2, "template update")
    modules = uv(my_api2, "python", "scripts/update_modules.py")
    assert "modules/orders: updated" in modules.stdout
    assert "created modules/orders" in uv(my_api, "python", "scripts/create_module.py", "--name", "orders").stdout


def test_a_project_rendered_from_a_dirty_checkout_says_how_to_recover(template: Path, tmp_path: Path) -> None:
    checkout = clone(template, tmp_path / "checkout")
    readme = checkout / "README.md"
    readme.write_text(readme.read_text() + "\nuncommitted\n")
    project = tmp_path / "my_api"
    data = ["-d", "project_name=my_api", "-d", "auth=rbac", "-d", "with_example_module=false"]
    copy = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--vcs-ref", "HEAD", *data]
    run([*copy, checkout, project], tmp_path)
    temporary = recorded(project, "_commit")
    assert run(["git", "cat-file", "-e", f"{temporary}^{{commit}}"], checkout, check=False).returncode != 0
    run(["git", "init", "-q"], project)
    commit_all(project, "generated")
    run(["uv", "sync", "--quiet"], project)

    for script in (["create_module.py", "--name", "orders"], ["update_modules.py"]):
        result = uv(project, "python", f"scripts/{script[0]}", *script[1:], check=False)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2, result.stderr
        assert "uncommitted changes" in lines[0]
        assert lines[1].startswith("recover: set `_commit:`")
        assert "Traceback" not in result.stderr

    # Following the second line works.
    head = run(["git", "rev-parse", "--short", "HEAD"], checkout).stdout.strip()
    answers = project / ".copier-answers.yml"
    answers.write_text(re.sub(r"^_commit: .*$", f"_commit: '{head}'", answers.read_text(), flags=re.MULTILINE))
    commit_all(project, "template commit")
    assert "created modules/orders" in uv(project, "python", "scripts/create_module.py", "--name", "orders").stdout


@pytest.mark.skipif(not SYSTEM_PYTHON.is_file() and not CI, reason=f"{SYSTEM_PYTHON} is not installed")
def test_quick_start_with_the_system_python(template: Path, tmp_path: Path) -> None:
    """Debian's python3 refuses `pip install` (PEP 668) and has neither copier nor uv: the command still works."""
    assert SYSTEM_PYTHON.is_file(), f"CI=true requires {SYSTEM_PYTHON}"
    checkout = clone(template, tmp_path / "fastapi-enterprise")
    elsewhere = tmp_path / "some-venv"  # a virtual environment left active in the user's shell
    env = {key: value for key, value in os.environ.items() if not key.startswith(("UV_", "PYENV"))}
    env.update(PATH="/usr/bin:/bin", VIRTUAL_ENV=str(elsewhere))
    assert shutil.which("uv", path=env["PATH"]) is None, "this test needs a PATH without uv"
    port = free_port()
    with (
        quick_start(SYSTEM_PYTHON, checkout, port, env=env) as output,
        urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=5) as response,
    ):
        assert b"/api/v1/users" in response.read()
    assert "setting up" in output[0]  # it really started without uv and copier
    assert "externally-managed-environment" not in output[0]
    assert VENV_WARNING not in output[0]
    # The README's second command starts the same way (`... uv run pytest`).
    version = run([SYSTEM_PYTHON, "scripts/bootstrap.py", "uv", "--version"], checkout, env=env)
    assert version.stdout.startswith("uv ")
    assert run(["git", "status", "--porcelain"], checkout).stdout == ""


@pytest.fixture(scope="module")
def seed_project(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed's first command, as written: `python scripts/init_project.py --name my_api --auth keycloak ...`."""
    folder = tmp_path_factory.mktemp("seed")
    command = [sys.executable, template / "scripts" / "init_project.py", "--name", "my_api", "--auth", "keycloak"]
    said = run([*command, "--with-example-module"], folder, env={"VIRTUAL_ENV": str(folder / "some-venv")}).stdout
    # What to run next, and how to avoid uv's warning about the active virtual environment.
    assert "  uv run python scripts/run_migrations.py --all" in said
    assert f"(`deactivate` first: with {folder / 'some-venv'} active" in said
    return folder / "my_api"


def test_the_seed_sequence_works_in_the_seed_order(seed_project: Path) -> None:
    root = seed_project
    run(["uv", "sync", "--quiet"], root)
    # The seed runs this one with a plain `python` (one without the project's packages), maybe in a venv.
    plain = {"VIRTUAL_ENV": sys.prefix, "DATABASE_URL": "", "CI": ""}
    migrated = run([sys.executable, "scripts/run_migrations.py", "--all"], root, env=plain)
    assert "upgraded to head: core, users" in migrated.stdout  # core: the jobs tables
    assert VENV_WARNING not in migrated.stderr

    created = uv(root, "python", "scripts/create_module.py", "--name", "products").stdout
    assert "created modules/products" in created
    model = uv(root, "python", "scripts/create_model.py", "--module", "products", "--name", "Product")
    assert "already holds Product, the module's sample resource" in model.stdout
    endpoint = uv(
        root, "python", "scripts/create_endpoint.py", "--module", "users", "--service", "auth", "--method", "post",
        "--path", "login",
    ).stdout  # fmt: skip
    assert "added POST /api/v1/users/login -> auth_service.login()" in endpoint
    assert "public: a sign-in endpoint cannot require a signed-in caller" in endpoint
    assert "tokens of this project come from Keycloak" in endpoint
    validated = uv(root, "python", "scripts/validate_structure.py")
    assert "no findings in 2 module(s)" in validated.stderr

    # And the project still passes its own checks.
    uv(root, "ruff", "check", ".")
    uv(root, "ruff", "format", "--check", ".")
    uv(root, "mypy", ".")
    suite = uv(root, "pytest", "-q", "-p", "no:cacheprovider", env={"DATABASE_URL": "", "REDIS_URL": "", "CI": ""})
    assert " passed" in suite.stdout
    assert "failed" not in suite.stdout.splitlines()[-1]
    login_test = (root / "modules" / "users" / "tests" / "test_auth_login.py").read_text()
    assert "sign_in" not in login_test, "a login endpoint that needs a login"


def test_every_script_runs_with_a_plain_python(seed_project: Path, tmp_path: Path) -> None:
    scripts = sorted(p.name for p in (seed_project / "scripts").glob("*.py") if p.read_text().count("__main__"))
    assert {"run_migrations.py", "create_module.py", "validate_structure.py"} <= set(scripts)
    run(["uv", "sync", "--quiet"], seed_project)
    for script in scripts:
        result = run([sys.executable, f"scripts/{script}", "--help"], seed_project, env={"VIRTUAL_ENV": sys.prefix})
        assert result.stdout.startswith("usage:"), (script, result.stderr)
        assert VENV_WARNING not in result.stderr

    # Without the environment and without uv: one line saying what to run.
    bare = tmp_path / "my_api"
    shutil.copytree(seed_project, bare, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    no_uv = {"PATH": "/usr/bin:/bin"}
    assert shutil.which("uv", path=no_uv["PATH"]) is None
    result = run([sys.executable, "scripts/run_migrations.py", "--all"], bare, env=no_uv, check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: this project's environment is missing: run `uv sync` in {bare}, then "
        "`uv run python scripts/run_migrations.py`"
    ]

    # Without the environment but with uv: `uv run` makes it, without a word about the active venv.
    result = run([sys.executable, "scripts/validate_structure.py", "--help"], bare, env={"VIRTUAL_ENV": sys.prefix})
    assert result.stdout.startswith("usage:")
    assert VENV_WARNING not in result.stderr
    assert (bare / ".venv").is_dir()


def test_release_tags_the_changelog_version(template: Path, tmp_path: Path) -> None:
    checkout = clone(template, tmp_path / "checkout")
    release = [sys.executable, "scripts/release.py"]
    version = re.search(r"^## (\d+\.\d+\.\d+)", (checkout / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert version is not None
    tag = f"v{version.group(1)}"
    assert run(["git", "tag", "--list"], checkout).stdout == ""
    assert f"ready: {tag} would tag" in run([*release, "--check"], checkout).stdout
    ident = {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_AUTHOR_NAME": "t"}
    assert f"as {tag}" in run(release, checkout, env=ident).stdout
    assert run(["git", "tag", "--list"], checkout).stdout.split() == [tag]
    again = run(release, checkout, env=ident, check=False)
    assert again.returncode == 1
    assert f"{tag} exists already" in again.stderr

    # A version the CHANGELOG and pyproject.toml disagree on is never tagged.
    changelog = checkout / "CHANGELOG.md"
    entry = f"## {version.group(1)}"
    changelog.write_text(changelog.read_text().replace(entry, f"## 9.9.9\n\n{entry}", 1))
    commit_all(checkout, "9.9.9 entry")
    refused = run(release, checkout, env=ident, check=False)
    assert refused.returncode == 1
    assert "CHANGELOG.md announces 9.9.9 but pyproject.toml says" in refused.stderr
    assert run(["git", "tag", "--list"], checkout).stdout.split() == [tag]


def test_cache_manager_connect_without_arguments_uses_the_project_settings(project: Callable[..., Path]) -> None:
    """The seed's `await cache_manager.connect()`, with CACHE_BACKEND=redis in the environment."""
    root = project(auth="rbac", with_example_module=False)
    script = (
        "import asyncio, json\nfrom src.core.cache import cache_manager\n"
        "async def main():\n    await cache_manager.connect()\n"
        "    print(json.dumps([cache_manager.backend, cache_manager.key_prefix]))\n    await cache_manager.close()\n"
        "asyncio.run(main())\n"
    )
    env = {"CONFIG_ENV": "development", "CACHE_BACKEND": "redis", "REDIS_URL": "redis://127.0.0.1:1/0"}
    out = uv(root, "python", "-c", script, env=env).stdout
    assert json.loads(out.strip().splitlines()[-1]) == ["redis", "my_api:"]


def test_a_bad_production_configuration_stops_with_one_line(project: Callable[..., Path]) -> None:
    """`uvicorn src.app:app` in production without JWT_SECRET_KEY: the reason, on one line, exit status 1."""
    root = project(auth="rbac", with_example_module=False)
    production = {"CONFIG_ENV": "production", "DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:1/x"}
    production |= {"REDIS_URL": "redis://127.0.0.1:1/0", "JWT_SECRET_KEY": ""}
    cases = {
        "": "environment variable JWT_SECRET_KEY is not set (needed by 'auth.rbac.secret_key')",
        "change-me": "auth.rbac.secret_key is a placeholder published with the template (set JWT_SECRET_KEY)",
    }
    for secret, reason in cases.items():
        env = {**production, "JWT_SECRET_KEY": secret}
        result = uv(root, "uvicorn", "src.app:app", "--port", str(free_port()), env=env, check=False, timeout=60)
        assert result.returncode == 1
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("configuration error: ")
        assert reason in lines[0]


def test_copier_shows_no_inline_script_when_adding_a_module(template: Path, tmp_path: Path) -> None:
    """Copier echoes each task it runs: a module's name check is one short hooks/ command, not a script."""
    modules = tmp_path / "my_api" / "modules"
    modules.mkdir(parents=True)
    copy = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", template, "modules/orders"]
    result = run(copy, modules.parent)
    task = [line for line in result.stderr.splitlines() if "Running task" in line]
    assert len(task) == 1, result.stderr
    assert "hooks/check_module.py" in task[0]
    assert "import pathlib" not in result.stderr


@pytest.mark.parametrize(
    ("uv_says", "blamed"),
    [
        ("error: Failed to parse: `pyproject.toml`\n  caused by: TOML parse error at line 2, column 8", False),
        ("error: Request failed after 3 retries\n  caused by: Failed to fetch: https://pypi.org/simple/fastapi/", True),
    ],
)
def test_uv_lock_failure_blames_the_network_only_when_it_is(
    template: Path, tmp_path: Path, uv_says: str, blamed: bool
) -> None:
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{uv_says}\nEOF\nexit 2\n")
    fake.chmod(0o755)
    data = ["-d", "project_name=my_api", "-d", "auth=rbac", "-d", "with_example_module=false"]
    copy = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--vcs-ref", "HEAD", *data]
    result = run([*copy, template, tmp_path / "my_api"], tmp_path, env={"PATH": f"{fake.parent}:{os.environ['PATH']}"})
    said = [line for line in result.stderr.splitlines() if "`uv lock` failed" in line]
    assert len(said) == 1, result.stderr
    assert ("no network?" in said[0]) is blamed
    assert uv_says.splitlines()[0] in said[0]  # uv's own words, not a guess
