"""Template updates: `copier update` on a project and `scripts/update_modules.py` on its modules.

The template is copied into a temporary git repository (tag v0.1.0), a project
is generated and committed, the user edits it, the template changes (tag
v0.2.0), and the project is updated as its README says. The tests check what a
user would: every template change arrived, every user edit survived, edits on
the same lines as the template's show as conflicts (never a silent loss), and
the project still passes its own checks afterwards.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.helpers import render, run, snapshot_template, uv

pytestmark = pytest.mark.slow

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
CHECKS_ENV = {"DATABASE_URL": "", "REDIS_URL": "", "CI": ""}
SQLITE_ENV = {"DATABASE_URL": "", "CONFIG_ENV": "development", "CI": ""}
AUTH_MODULE = "project_template/modules/{% if auth == 'rbac' %}auth{% endif %}"
CONFLICT = re.compile(r"<<<<<<< before updating\n(.*?)=======\n(.*?)>>>>>>> after updating\n", re.S)

# A breaking-change step as a release ships it (hooks/migrations/v<X_Y_Z>.py + a `_migrations` entry).
# It appends instead of checking first, on purpose: the log counts how often it ran.
MIGRATION_STEP = '''"""Test step: records each run."""

from pathlib import Path


def before_project(root: Path) -> str:
    with (root / "template-migrations.log").open("a", encoding="utf-8") as log:
        log.write("{version} before\\n")
    return "logged"


def after_project(root: Path) -> str:
    with (root / "template-migrations.log").open("a", encoding="utf-8") as log:
        log.write("{version} after\\n")
    return "logged"


def after_module(root: Path) -> str:
    return f"looked at {{root.name}}"
'''
MIGRATION_ENTRY = """  - version: "{version}"
    command: ["{{{{ _copier_python }}}}", "{{{{ _copier_conf.src_path }}}}/hooks/migrate.py",
              "{version}", "--stage={{{{ _stage }}}}", "--kind={{{{ template_kind }}}}"]
    when: "{{{{ true }}}}"
"""


def commit(repo: Path, message: str, tag: str | None = None) -> None:
    run(["git", "add", "-A"], repo)
    run([*GIT, "commit", "-q", "-m", message], repo)
    if tag:
        run([*GIT, "tag", tag], repo)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def copier_update(project: Path, *args: str) -> str:
    """`copier update --trust --defaults` as the README says; returns what it printed."""
    result = run([sys.executable, "-m", "copier", "update", "--trust", "--defaults", *args], project)
    return result.stdout + result.stderr


def status(repo: Path) -> list[str]:
    return run(["git", "status", "--porcelain", "--untracked-files=all"], repo).stdout.splitlines()


def unmerged(repo: Path) -> list[str]:
    return run(["git", "diff", "--name-only", "--diff-filter=U"], repo).stdout.split()


def keep_mine(path: Path) -> str:
    """Resolve every conflict in `path` the way a user keeping their side would; return the file as it was."""
    text = path.read_text(encoding="utf-8")
    path.write_text(CONFLICT.sub(r"\1", text), encoding="utf-8")
    return text


def add_migrations(template: Path, *versions: str) -> None:
    for version in versions:
        step = template / "hooks" / "migrations" / f"v{version.replace('.', '_')}.py"
        step.parent.mkdir(exist_ok=True)
        step.write_text(MIGRATION_STEP.format(version=version), encoding="utf-8")
        edit(template / "copier.yml", "_migrations:\n", "_migrations:\n" + MIGRATION_ENTRY.format(version=version))


def before_module_settings(template: Path) -> None:
    """Make v0.1.0 the module template from before per-module settings (no settings.py, TTLs as constants).

    Modules created then must keep working after the project's update, and gain settings.py with their own.
    """
    module = template / "module_template"
    (module / "settings.py.jinja").unlink()
    (module / "tests" / "{% if example %}test_{{ model_snake }}_settings.py{% endif %}.jinja").unlink()
    for which, ttls in (("example", ("get", "list")), ("not example", ("get",))):
        services = (
            template
            / "module_template"
            / "services"
            / ("{% if " + which + " %}{{ model_snake }}_service.py{% endif %}.jinja")
        )
        edit(services, "from modules.{{ module_name }}.settings import Settings\n", "")
        edit(services, "from src.core.module_settings import settings_of\n", "")
        for ttl in ttls:
            edit(services, f"ttl=lambda: settings_of(Settings).{ttl}_ttl)", "ttl=300)")
    commit(template, "before module settings")
    run(["git", "tag", "-f", "v0.1.0"], template)


def release_v2(template: Path) -> None:
    """Template changes touching files users also edit, and others; tagged v0.2.0."""
    run(["git", "checkout", "main~1", "--", "module_template"], template)  # per-module settings are back
    core = template / "project_template"
    (core / "src" / "core" / "clock.py").write_text(
        '"""Clock helpers (template v0.2.0)."""\n\nfrom datetime import UTC, datetime\n\n\n'
        'def now() -> datetime:\n    """The current time, in UTC."""\n    return datetime.now(UTC)\n',
        encoding="utf-8",
    )
    edit(core / "config" / "development.yml.jinja", "default_ttl: 300", "default_ttl: 120")
    edit(core / "pyproject.toml.jinja", '"fastapi>=0.115",\n', '"fastapi>=0.115",\n    "certifi>=2024.2",\n')
    append(core / "README.md.jinja", "\nTemplate v0.2.0 README line.\n")
    edit(template / AUTH_MODULE / "routes" / "login.py", '"""', '"""(template v0.2.0) ')
    module = template / "module_template"
    skeleton_routes = module / "routes" / "{% if not example %}{{ model_snake }}.py{% endif %}.jinja"
    edit(skeleton_routes, "Routes translate:", "Routes (template v0.2.0) translate:")
    edit(module / "cache" / "__init__.py.jinja", "another module's keys.", "another module's keys (template v0.2.0).")
    (module / "events.py.jinja").write_text(
        '"""Events of the {{ module_name }} module (template v0.2.0)."""\n\nEVENTS: list[str] = []\n', encoding="utf-8"
    )
    add_migrations(template, "0.2.0")
    commit(template, "v0.2.0", tag="v0.2.0")


USER_ENDPOINT = """

@router.get("/stats/count")
async def count_orders(session: SessionDep) -> dict[str, int]:
    page = await order_service.list_page(session=session, offset=0, limit=1)
    return {"total": page.total}
"""
USER_TEST = '''"""The user's own test of the endpoint they added."""

import httpx


async def test_count(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/orders/stats/count")
    assert response.status_code == 200, response.text
    assert response.json()["total"] >= 0
'''


def user_edits(project: Path) -> None:
    orders = project / "modules" / "orders"
    append(orders / "routes" / "order.py", USER_ENDPOINT)
    (orders / "tests" / "test_count.py").write_text(USER_TEST, encoding="utf-8")
    # The same line as the template's v0.2.0 change: must come out as a conflict.
    edit(orders / "cache" / "__init__.py", "another module's keys.", "another module's keys, ever.")
    config = project / "config" / "development.yml"
    edit(config, "level: INFO", "level: DEBUG")
    edit(config, "default_ttl: 300", "default_ttl: 600")  # the template changes this line too
    edit(project / "pyproject.toml", '"pwdlib[argon2]>=0.2",\n', '"pwdlib[argon2]>=0.2",\n    "idna>=3.0",\n')
    append(project / "README.md", "\nOur team's notes.\n")


def test_update_brings_template_changes_and_keeps_user_edits(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "template", tag="v0.1.0")
    before_module_settings(template)
    project = render(template, tmp_path / "work" / "my_api", auth="rbac", with_example_module=True)
    run(["git", "init", "-q", "-b", "main"], project)
    commit(project, "generated")
    uv(project, "python", "scripts/create_module.py", "--name", "orders")
    assert not (project / "modules" / "orders" / "settings.py").exists()
    commit(project, "orders module")
    user_edits(project)
    commit(project, "our changes")
    release_v2(template)

    # The project: core files, config, the auth module, pyproject; modules/ stays as it is.
    said = copier_update(project)
    assert "conflicts in this project: config/development.yml" in said, said
    assert unmerged(project) == ["config/development.yml"]
    config = keep_mine(project / "config" / "development.yml")
    assert "default_ttl: 600\n=======\n  default_ttl: 120\n" in config, config
    assert "level: DEBUG" in config
    assert (project / "src" / "core" / "clock.py").is_file()
    assert "(template v0.2.0)" in (project / "modules" / "auth" / "routes" / "login.py").read_text()
    pyproject = (project / "pyproject.toml").read_text()
    assert '"certifi>=2024.2"' in pyproject and '"idna>=3.0"' in pyproject
    # uv.lock was re-locked after the merge: it holds the template's and the user's dependency.
    locked = (project / "uv.lock").read_text()  # requires-dist is recorded for the project itself only
    assert (
        '{ name = "certifi", specifier = ">=2024.2" }' in locked and '{ name = "idna", specifier = ">=3.0" }' in locked
    )
    readme = (project / "README.md").read_text()
    assert "Our team's notes." in readme and "Template v0.2.0" not in readme  # the user owns README.md
    assert (project / "template-migrations.log").read_text().splitlines() == ["0.2.0 before", "0.2.0 after"]
    assert not [line for line in status(project) if "modules/orders" in line or "modules/users" in line]
    commit(project, "template v0.2.0")
    # Modules from before per-module settings (no settings.py) still start, with nothing declared.
    started = "from src.app import app; print(sorted(m.name for m in app.state.modules))"
    assert uv(project, "python", "-c", started, env=SQLITE_ENV).stdout.strip() == "['auth', 'orders', 'users']"

    # The modules, pinned to the project's version: orders conflicts, so users waits.
    first = uv(project, "python", "scripts/update_modules.py", check=False)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "modules/orders: conflicts: conflicts in: cache/__init__.py" in first.stdout
    assert "modules/users: not reached" in first.stdout
    assert "modules/auth: skipped" in first.stdout
    assert "[fastapi-enterprise] migration 0.2.0 (after, module orders): looked at orders" in first.stdout
    assert not [line for line in status(project) if "modules/users" in line]
    orders = project / "modules" / "orders"
    routes = (orders / "routes" / "order.py").read_text()
    assert "Routes (template v0.2.0) translate:" in routes and '@router.get("/stats/count")' in routes
    assert (orders / "events.py").is_file() and (orders / "tests" / "test_count.py").is_file()
    assert "get_ttl: int" in (orders / "settings.py").read_text()  # the update adds the file
    assert "settings_of(Settings).get_ttl" in (orders / "services" / "order_service.py").read_text()
    cache = keep_mine(orders / "cache" / "__init__.py")
    assert "keys, ever.\n=======\n" in cache and "(template v0.2.0).\n>>>>>>> after updating" in cache
    commit(project, "orders at template v0.2.0")

    second = uv(project, "python", "scripts/update_modules.py")
    assert "modules/orders: already current: v0.2.0" in second.stdout, second.stdout
    assert "modules/users: updated: to v0.2.0" in second.stdout, second.stdout
    users = project / "modules" / "users"
    assert (users / "events.py").is_file()
    assert "list_ttl: int" in (users / "settings.py").read_text()
    assert "(template v0.2.0)" in (users / "cache" / "__init__.py").read_text()
    commit(project, "users at template v0.2.0")

    # The project's own checks, on the merged result; then its migrations, on a fresh SQLite database.
    uv(project, "ruff", "check", ".")
    uv(project, "ruff", "format", "--check", ".")
    uv(project, "mypy", ".")
    uv(project, "python", "scripts/validate_structure.py")
    uv(project, "pytest", "-q", "-p", "no:cacheprovider", env=CHECKS_ENV)
    migrated = uv(project, "python", "scripts/run_migrations.py", "--all", env=SQLITE_ENV)
    assert "orders" in migrated.stdout + migrated.stderr


def test_migration_step_runs_once_and_a_current_project_stays_unchanged(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "template", tag="v0.1.0")
    project = render(template, tmp_path / "work" / "my_api", auth="keycloak", with_example_module=True)
    legacy = project / "modules" / "legacy"  # written by hand: no answers file
    legacy.mkdir()
    (legacy / "__init__.py").write_text('"""A module written by hand."""\n', encoding="utf-8")
    uv(project, "python", "scripts/validate_structure.py", "--describe", "--write")  # as docs/module-settings.md asks
    run(["git", "init", "-q", "-b", "main"], project)
    commit(project, "generated")

    add_migrations(template, "0.2.0", "9.0.0")  # 9.0.0 is beyond every update below: it never runs
    commit(template, "v0.2.0", tag="v0.2.0")
    copier_update(project)
    assert (project / "template-migrations.log").read_text().splitlines() == ["0.2.0 before", "0.2.0 after"]
    commit(project, "template v0.2.0")

    (template / "project_template" / "docs" / "new-in-0.3.md").write_text("# New in 0.3\n", encoding="utf-8")
    commit(template, "v0.3.0", tag="v0.3.0")
    said = copier_update(project)
    assert "Updating to template version 0.3.0" in said, said
    assert (project / "docs" / "new-in-0.3.md").is_file()
    assert (project / "template-migrations.log").read_text().splitlines() == ["0.2.0 before", "0.2.0 after"]
    commit(project, "template v0.3.0")

    said = copier_update(project)
    assert "Keeping template version 0.3.0" in said, said
    assert status(project) == []
    # The hooks themselves, run again on a project that is already right, change nothing either.
    head = run(["git", "rev-parse", "HEAD"], template).stdout.strip()
    hooks = template / "hooks"
    post_project = [f"--checkout={template}", f"--ref={head}", f"--src={template}", "--with-example-module=True"]
    run([sys.executable, hooks / "post_project.py", *post_project], project)
    run([sys.executable, hooks / "post_update.py", "--kind=project"], project)
    assert status(project) == []

    (project / "notes.txt").write_text("not committed yet\n", encoding="utf-8")
    refused = uv(project, "python", "scripts/update_modules.py", check=False)
    assert refused.returncode == 2
    assert "uncommitted changes" in refused.stderr and "notes.txt" in refused.stderr
    (project / "notes.txt").unlink()
    listed = uv(project, "python", "scripts/update_modules.py")
    assert "modules/legacy: skipped: no .copier-answers.yml" in listed.stdout, listed.stdout
    assert "modules/users: updated: to v0.3.0; no file changed" in listed.stdout, listed.stdout
    assert status(project) == [" M modules/users/.copier-answers.yml"]
