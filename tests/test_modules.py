"""Modules: the module template, the generators, one Alembic history per module.

One project is rendered for the whole file. Two modules are added through
`scripts/create_module.py` (orders, invoices), a third by plain `copier copy`
(shipments); each gets a model through `scripts/create_model.py`, and orders gets a
few endpoints through `scripts/create_endpoint.py`. The tests then use that project
as a user would: lint and type check, migrate up and down per module on
SQLite and PostgreSQL, look at what the app serves, and feed the generators
bad input.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import keyword
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import copier
import pytest
import yaml
from jinja2.sandbox import SandboxedEnvironment

from tests.helpers import render, run, uv

# The default (development) configuration: SQLite at data/my_api.db.
SQLITE_ENV = {"DATABASE_URL": "", "CONFIG_ENV": "development", "CI": ""}
SUITE_ENV = {"DATABASE_URL": "", "REDIS_URL": "", "CI": ""}


@pytest.fixture(scope="module")
def scaffolded(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = render(template, tmp_path_factory.mktemp("modules") / "my_api", auth="rbac", with_example_module=True)
    run(["uv", "sync", "--quiet"], root)
    for name in ("orders", "invoices"):
        out = uv(root, "python", "scripts/create_module.py", "--name", name).stdout
        assert f"created modules/{name}" in out
    # A module copied with Copier itself, as the README shows: template_kind defaults to module.
    copier.run_copy(str(template), str(root / "modules" / "shipments"), defaults=True, unsafe=True, vcs_ref="HEAD")
    for module, model in (("orders", "OrderLine"), ("invoices", "Payment"), ("shipments", "Parcel")):
        uv(root, "python", "scripts/create_model.py", "--module", module, "--name", model)
    endpoints = [
        ["--service", "billing", "--method", "post", "--path", "{order_id}/refund", "--auth", "admin"],
        # No --auth: a write defaults to a signed-in user.
        ["--service", "billing", "--method", "put", "--path", "{order_id}/note"],
        # Into the sample resource's own files; `status` is also an import there, so it becomes get_status.
        ["--service", "order", "--method", "get", "--path", "status"],
    ]
    for endpoint in endpoints:
        uv(root, "python", "scripts/create_endpoint.py", "--module", "orders", *endpoint)
    # A background task with its test (run below with the module's suite).
    made = uv(root, "python", "scripts/create_task.py", "--module", "orders", "--name", "send_confirmation").stdout
    assert "created modules/orders/tasks/send_confirmation.py (task orders.send_confirmation)" in made
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file under modules/ and scripts/ with a digest of its content."""
    files = [p for folder in ("modules", "scripts") for p in (root / folder).rglob("*") if p.is_file()]
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
        if "__pycache__" not in p.parts
    }


def test_module_answers_pin_the_project_template_version(scaffolded: Path) -> None:
    project = (scaffolded / ".copier-answers.yml").read_text()
    commit = next(line for line in project.splitlines() if line.startswith("_commit:"))
    for name in ("orders", "invoices", "shipments"):
        answers = (scaffolded / "modules" / name / ".copier-answers.yml").read_text()
        assert "template_kind: module" in answers
        assert f"module_name: {name}" in answers
        assert commit in answers.splitlines(), f"{name} is not at the project's template version"
    layout = ["__init__.py", "routes", "models", "schemas", "services", "cache", "enums", "alembic", "tests"]
    layout += ["events", "tasks", "tasks/send_confirmation.py", "tests/test_task_send_confirmation.py"]
    for entry in layout:
        assert (scaffolded / "modules" / "orders" / entry).exists(), entry


def test_generated_code_passes_lint_format_types_and_its_tests(scaffolded: Path) -> None:
    uv(scaffolded, "ruff", "check", ".")
    uv(scaffolded, "ruff", "format", "--check", ".")
    uv(scaffolded, "mypy", ".")
    validated = uv(scaffolded, "python", "scripts/validate_structure.py")  # exit 0: no findings
    assert "no findings" in validated.stdout + validated.stderr
    result = uv(
        scaffolded,
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "modules",
        "tests/test_migrations.py",
        "tests/test_hostile_clients.py",  # schemathesis over every module, generated ones included
        env=SUITE_ENV,
    )
    assert " passed" in result.stdout
    assert "failed" not in result.stdout


def test_discovery_serves_every_module(scaffolded: Path) -> None:
    script = "import json; from src.app import create_app; print(json.dumps(create_app().openapi()['paths']))"
    paths = json.loads(uv(scaffolded, "python", "-c", script, env=SQLITE_ENV).stdout.splitlines()[-1])
    for name in ("users", "orders", "invoices", "shipments"):
        assert f"/api/v1/{name}/" in paths
    assert {"/api/v1/orders/{order_id}/refund", "/api/v1/orders/{order_id}/note", "/api/v1/orders/status"} <= set(paths)

    # Every integer id and offset stops at PostgreSQL's integer (a 422 instead of a database error).
    bounded = [
        ("/api/v1/orders/{order_id}", "get", "order_id", 1),
        ("/api/v1/orders/{order_id}/refund", "post", "order_id", 1),  # written by create_endpoint.py
        ("/api/v1/users/", "get", "offset", 0),
        ("/api/v1/auth/users/{user_id}", "delete", "user_id", 1),
        ("/api/v1/auth/users", "get", "offset", 0),
    ]
    for path, method, name, minimum in bounded:
        schema = next(p["schema"] for p in paths[path][method]["parameters"] if p["name"] == name)
        assert (schema["minimum"], schema["maximum"]) == (minimum, 2**31 - 1), (path, name)


def test_create_endpoint_writes_need_a_signed_in_user_by_default(scaffolded: Path) -> None:
    tests = scaffolded / "modules" / "orders" / "tests"
    # The generated tests (run by test_generated_code_passes_lint_format_types_and_its_tests) expect a 401.
    assert "async def test_note_needs_a_signed_in_user" in (tests / "test_billing_note.py").read_text()
    assert "needs_a_signed_in_user" not in (tests / "test_order_get_status.py").read_text()
    shown = " ".join(uv(scaffolded, "python", "scripts/create_endpoint.py", "--help").stdout.split())
    assert "default: public for GET and sign-in paths (login, register, token), user for other writes" in shown


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def migrate(root: Path, env: dict[str, str], *args: str) -> str:
    return uv(root, "python", "scripts/run_migrations.py", *args, env=env).stdout


OWN = {
    "orders": {"orders", "orders_lines", "alembic_version_orders"},
    "invoices": {"invoices", "invoices_payments", "alembic_version_invoices"},
    "shipments": {"shipments", "shipments_parcels", "alembic_version_shipments"},
}


def round_trip(root: Path, env: dict[str, str], list_tables: Callable[[], set[str]]) -> None:
    assert "upgraded to head: core, auth, invoices, orders, shipments, users" in migrate(root, env, "--all")
    everything = list_tables()
    for own in OWN.values():
        assert own <= everything

    migrate(root, env, "--module", "orders", "--downgrade", "base")
    left = list_tables()
    assert not (OWN["orders"] - {"alembic_version_orders"}) & left, "orders' tables are dropped"
    assert OWN["invoices"] | OWN["shipments"] <= left, "the other modules' tables and version tables are untouched"
    check = uv(root, "python", "scripts/run_migrations.py", "--check", env=env, check=False)
    assert check.returncode == 1 and "orders: database at None" in check.stdout, check.stdout

    migrate(root, env, "--module", "orders")
    assert list_tables() == everything
    assert "models and migrations agree" in migrate(root, env, "--check")


def test_migrations_per_module_on_sqlite(scaffolded: Path) -> None:
    db = scaffolded / "data" / "my_api.db"
    db.unlink(missing_ok=True)
    round_trip(scaffolded, SQLITE_ENV, lambda: tables(db))


def test_migrations_per_module_on_postgres(scaffolded: Path, postgres: str) -> None:
    env = {"DATABASE_URL": postgres, "CONFIG_ENV": "development", "CI": ""}
    admin = postgres.replace("postgresql+asyncpg://", "postgresql://")

    def pg_tables() -> set[str]:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        return set(run(["psql", admin, "-At", "-c", query], scaffolded).stdout.split())

    round_trip(scaffolded, env, pg_tables)
    # The project's own migration tests (advisory lock included) and the modules' suites, on PostgreSQL.
    suite = uv(
        scaffolded,
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "modules",
        "tests/test_migrations.py",
        "tests/test_hostile_clients.py",
        env={"DATABASE_URL": postgres, "CI": "true"},
    )
    assert " passed" in suite.stdout and "skipped" not in suite.stdout.splitlines()[-1], suite.stdout[-2000:]


def test_autogenerate_for_one_module_proposes_nothing_about_the_others(
    scaffolded: Path, template: Path, tmp_path: Path
) -> None:
    # A sibling whose name extends invoices + "_", copied in by hand (create_module.py refuses it):
    # its tables match the `invoices_*` prefix too, yet they are invoices_archive's.
    sibling = scaffolded / "modules" / "invoices_archive"
    copier.run_copy(
        str(template), str(tmp_path / "modules" / sibling.name), defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True
    )
    shutil.move(tmp_path / "modules" / sibling.name, sibling)
    revision: Path | None = None
    try:
        reported = uv(scaffolded, "python", "scripts/validate_structure.py", check=False)
        assert reported.returncode == 1
        assert "modules/invoices_archive:1: LAYOUT-004" in reported.stdout, reported.stdout
        migrate(scaffolded, SQLITE_ENV, "--all")
        out = migrate(scaffolded, SQLITE_ENV, "--module", "invoices", "--autogenerate", "nothing changed")
        revision = scaffolded / out.split("wrote ", 1)[1].split(" ", 1)[0]
        body = revision.read_text()
        for other in ("invoices_archive", "orders", "shipments", "users", "auth", "alembic_version"):
            assert other not in body, f"the invoices revision mentions {other}"
        assert "op." not in body, body
    finally:
        if revision is not None:
            revision.unlink()
        migrate(scaffolded, SQLITE_ENV, "--module", sibling.name, "--downgrade", "base")
        shutil.rmtree(sibling)


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("create_module", ["--name", "class"], "is a Python keyword"),
        ("create_module", ["--name", "type"], "is a Python keyword"),  # a soft keyword: copier.yml refuses it too
        ("create_module", ["--name", "../x"], "must be a lowercase Python identifier"),
        ("create_module", ["--name", "orders"], "modules/orders already exists"),
        ("create_module", ["--name", "core"], "reserved"),
        ("create_module", ["--name", "orders_archive"], "would both own tables named orders_*"),
        ("create_model", ["--module", "nowhere", "--name", "Thing"], "there is no module 'nowhere'"),
        ("create_model", ["--module", "orders", "--name", "OrderLine"], "already exists"),
        ("create_module", ["--name", "orders_"], "end with a letter or digit"),
        ("create_model", ["--module", "orders", "--name", "thing"], "must be CamelCase"),
        ("create_model", ["--module", "orders", "--name", "Class"], "'class' is a Python keyword"),
        ("create_model", ["--module", "orders", "--name", "Thing", "--table", "invoices_x"], "must be named"),
        ("create_endpoint", ["--module", "nowhere", "--service", "s", "--method", "get", "--path", "x"], "no module"),
        (
            "create_endpoint",
            ["--module", "orders", "--service", "order", "--method", "get", "--path", "{id}"],
            "already serves GET /api/v1/orders/{id}",
        ),
        (
            "create_endpoint",
            ["--module", "orders", "--service", "billing", "--method", "post", "--path", "/{x}/refund/"],
            "already serves POST",
        ),
        (
            "create_endpoint",
            ["--module", "orders", "--service", "class", "--method", "get", "--path", "x"],
            "must be a lowercase identifier",
        ),
        (
            "create_endpoint",
            ["--module", "orders", "--service", "s", "--method", "get", "--path", "../x"],
            "segment '..'",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    scaffolded: Path, script: str, args: list[str], message: str
) -> None:
    before = snapshot(scaffolded)
    result = uv(scaffolded, "python", f"scripts/{script}.py", *args, check=False, env=SQLITE_ENV)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert snapshot(scaffolded) == before


def test_create_model_of_the_sample_resource_finds_it_made(scaffolded: Path) -> None:
    """`create_module --name orders` made Order; asking for it again (the seed's sequence) is not an error."""
    before = snapshot(scaffolded)
    args = ["--module", "orders", "--name", "Order"]
    result = uv(scaffolded, "python", "scripts/create_model.py", *args, env=SQLITE_ENV)
    assert "modules/orders/models/order.py already holds Order, the module's sample resource" in result.stdout
    assert snapshot(scaffolded) == before


@pytest.mark.parametrize(
    ("folder", "data", "message"),
    [
        ("orders", {"module_name": "other"}, "must equal its folder name 'orders'"),
        ("class", {}, "is a Python keyword"),
        ("core", {}, "reserved by the project layout"),
        ("Orders", {}, "lowercase Python identifier"),
        ("a" * 41, {}, "keep it to 40"),
    ],
)
def test_copier_refuses_a_bad_module_name(
    template: Path, tmp_path: Path, folder: str, data: dict[str, str], message: str
) -> None:
    dst = tmp_path / "modules" / folder
    with pytest.raises(ValueError, match=message):
        copier.run_copy(str(template), str(dst), data=data, defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    assert not dst.exists()


def test_copier_refuses_a_module_extending_a_sibling_name(
    template: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "modules" / "orders").mkdir(parents=True)
    (tmp_path / "modules" / "orders" / "__init__.py").write_text("")
    dst = tmp_path / "modules" / "orders_archive"
    with pytest.raises(copier.errors.TaskError):
        copier.run_copy(str(template), str(dst), defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    assert "would both own tables named orders_*" in capfd.readouterr().err
    assert not dst.exists()


def load_names(path: Path):  # hooks/names.py, or a project's scripts/names.py
    spec = importlib.util.spec_from_file_location(f"names_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    names = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(names)
    return names


def test_one_set_of_name_rules_for_copier_init_project_and_the_scripts(template: Path, scaffolded: Path) -> None:
    """copier.yml's validators, hooks/names.py and a project's scripts/names.py give the same verdicts and words."""
    for rendered in ("names.py", "names.json"):  # the project's copy is the template's own file
        assert (scaffolded / "scripts" / rendered).read_bytes() == (template / "hooks" / rendered).read_bytes()
    names = load_names(template / "hooks" / "names.py")
    config = yaml.safe_load((template / "copier.yml").read_text())
    env = SandboxedEnvironment(extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"])
    rules = json.loads((template / "hooks" / "names.json").read_text())

    def copier_says(question: str, value: str) -> str | None:
        context = {question: value, "name_rules": rules, "_folder_name": value}
        said = " ".join(env.from_string(config[question]["validator"]).render(context).split())
        return said.removeprefix(f"{question} ") or None

    lowercase = {"my_api", "my_api_", "orders", "order_items", "a", "a" * 41, "x__y", "Orders", "9lives", "../x"}
    lowercase |= set(keyword.kwlist) | set(keyword.softkwlist) | set(rules["reserved_project_names"])
    lowercase |= set(rules["reserved_module_names"])
    for name in sorted(lowercase):
        assert copier_says("project_name", name) == names.project_name_problem(name), name
        assert copier_says("module_name", name) == names.module_name_problem(name), name
    for name in ("Order", "OrderLine", "Class", "None", "Match", "Import", "order", "Order_Line", "ImportItem"):
        assert copier_says("model_name", name) == names.class_name_problem(name), name
    # The cases users meet, with the words they read.
    assert "end with a letter or digit" in names.project_name_problem("my_api_")
    assert names.module_name_problem("type") == "'type' is a Python keyword; choose another name"
    assert names.class_name_problem("ImportItem") is None


def test_create_module_follows_a_git_url_template(template: Path, tmp_path: Path) -> None:
    """`_src_path` may be a git URL (git+file://... here): the module comes from the same commit."""
    root = tmp_path / "my_api"
    copier.run_copy(
        f"git+file://{template}",
        str(root),
        data={"project_name": "my_api", "auth": "rbac", "with_example_module": False},
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    assert "_src_path: git+file://" in (root / ".copier-answers.yml").read_text()
    run(["uv", "sync", "--quiet"], root)
    uv(root, "python", "scripts/create_module.py", "--name", "orders")
    assert (root / "modules" / "orders" / "models" / "order.py").is_file()
