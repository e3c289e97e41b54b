"""scripts/validate_structure.py: every kind of boundary violation is reported at its file and line.

Violations are planted in a copy of a cached render (the copy is ours to modify;
the validator runs with the render's own environment). Each planted line carries
a `# expect: RULE-ID` marker, so the expected findings are read from the files
themselves and the report must match them exactly: nothing missed, nothing extra.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import run
from tests.test_generated_project import COMBINATIONS

Finding = tuple[str, int, str]


def write_module(root: Path, name: str, files: dict[str, str] | None = None) -> None:
    """A complete module in the seed's layout (table `<name>_items`), with `files` replacing or adding files."""
    base = {
        "__init__.py": f"from modules.{name}.routes import router\n\n__all__ = ['router']\n",
        "routes/__init__.py": (
            "from fastapi import APIRouter\n\nrouter = APIRouter(prefix='/items')\n\n\n"
            "@router.get('/')\nasync def index() -> list[str]:\n    return []\n"
        ),
        "models/__init__.py": (
            "from sqlalchemy.orm import Mapped, mapped_column\n\nfrom src.core.db import Base\n\n\n"
            f"class Item(Base):\n    __tablename__ = '{name}_items'\n\n"
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        ),
        "schemas/__init__.py": "from pydantic import BaseModel\n\n\nclass ItemRead(BaseModel):\n    id: int\n",
        "services/__init__.py": (
            f"from modules.{name}.cache import cache\nfrom modules.{name}.schemas import ItemRead\n\n\n"
            "async def get_item(*, item_id: int) -> ItemRead:\n"
            '    """One item."""\n'
            "    await cache.invalidate(pattern='items:*')\n    return ItemRead(id=item_id)\n"
        ),
        "cache/__init__.py": f"from src.core.cache import CacheNamespace\n\ncache = CacheNamespace('{name}')\n",
        "enums/__init__.py": "",
        "alembic/__init__.py": "",
        "alembic/env.py": f"from src.core.migrations import run_module_env\n\nrun_module_env('{name}')\n",
        "alembic/versions/0001_init.py": (
            "import sqlalchemy as sa\nfrom alembic import op\n\nrevision = '0001'\ndown_revision = None\n\n\n"
            "def upgrade() -> None:\n"
            f"    op.create_table('{name}_items', sa.Column('id', sa.Integer(), primary_key=True))\n"
            f"    op.create_index('ix_{name}_items_id', '{name}_items', ['id'])\n\n\n"
            f"def downgrade() -> None:\n    op.drop_table('{name}_items')\n"
        ),
        "tests/__init__.py": "",
    }
    for rel, text in {**base, **(files or {})}.items():
        path = root / "modules" / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# A module that uses `catalog` the right way: declared, services and schemas only, its own cache and tables.
CLEAN_ORDERS = {
    "settings.py": 'depends_on = ("catalog",)\n',
    "routes/__init__.py": """\
from fastapi import APIRouter

from modules.catalog.schemas import ItemRead
from modules.catalog.services import get_item
from modules.orders.cache import cache

router = APIRouter()


@router.get("/{item_id}")
async def show(item_id: int) -> ItemRead:
    await cache.delete("catalog:1")  # relative to the orders namespace: orders:catalog:1
    return await get_item(item_id=item_id)
""",
    "models/__init__.py": """\
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from src.core.db import Base


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    catalog_item_id: Mapped[int]  # another module's id: a plain column, no ForeignKey
    lines = relationship("OrderLine")


class OrderLine(Base):
    __tablename__ = "orders_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"))
""",
}

# Another module's events are public too: a handler in orders subscribes to catalog's event.
CATALOG_EVENTS = {
    "events/__init__.py": "from src.core.jobs import Event\n\n\nclass ItemAdded(Event):\n    item_id: int\n",
}
ORDERS_HANDLER = {
    "tasks/__init__.py": """\
from sqlalchemy.ext.asyncio import AsyncSession

from modules.catalog.events import ItemAdded
from src.core.jobs import handles


@handles(ItemAdded)
async def reserve_stock(event: ItemAdded, session: AsyncSession) -> None:
    \"\"\"Reserve stock for the new item.\"\"\"
""",
}

# Each violation sits on a line marked with the rule(s) it breaks.
BAD_ORDERS = {
    "settings.py": 'depends_on = ("billing", "catalog")  # expect: DEP-002\n',
    "services/__init__.py": """\
from modules.catalog.models import Item  # expect: IMP-001
from modules.catalog.cache import cache as catalog_cache  # expect: IMP-001 CACHE-004
from modules.catalog.services import cache  # expect: CACHE-004
from src.core.cache import cache_manager, cached

KEY = "catalog:123"
OWN_KEY = "orders:123"


@cached(prefix="catalog", ttl=60)  # expect: CACHE-002
async def count() -> int:
    \"\"\"How many.\"\"\"
    await cache_manager.get(KEY)  # expect: CACHE-003
    await cache_manager.get(OWN_KEY)
    await cache_manager.delete("catalog:1")  # expect: CACHE-003
    await cache_manager.delete(f"catalog.items:{count}")  # expect: CACHE-003
    await catalog_cache.delete("x")
    await cache.delete("y")
    return len([Item])
""",
    # A task may use another module's events, never its internals.
    "tasks/__init__.py": "from modules.catalog.models import Item  # expect: IMP-001\n\nTASK_SEES = [Item]\n",
    "cache/__init__.py": """\
from src.core.cache import CacheNamespace

cache = CacheNamespace("orders")
shared = CacheNamespace("catalog")  # expect: CACHE-001
""",
    "models/__init__.py": """\
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from src.core.db import Base

SUFFIX = "x"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("catalog_items.id"))  # expect: FK-001
    item = relationship("Item")  # expect: FK-002


class Misnamed(Base):
    __tablename__ = "catalog_extra"  # expect: TBL-001

    id: Mapped[int] = mapped_column(primary_key=True)


class Computed(Base):
    __tablename__ = f"orders_{SUFFIX}"  # expect: TBL-003

    id: Mapped[int] = mapped_column(primary_key=True)


copied = sa.Table("catalog_items", Base.metadata, sa.Column("id", sa.Integer))  # expect: TBL-002
loose = sa.Table("audit", Base.metadata, sa.Column("id", sa.Integer))  # expect: TBL-001
""",
    "routes/__init__.py": """\
from fastapi import APIRouter, FastAPI, Request

from src.app import create_app  # expect: ROUTE-003

router = APIRouter()
other = APIRouter(prefix="/api/v1/catalog")  # expect: ROUTE-002
sub = FastAPI()  # expect: ROUTE-003


@router.get("items")  # expect: ROUTE-001
async def items() -> list[int]:
    return []


@router.get("/../catalog/x")  # expect: ROUTE-001
async def escape(request: Request) -> None:
    request.app.include_router(other)  # expect: ROUTE-003
    create_app()


router.add_api_route("//x", items)  # expect: ROUTE-001
""",
    "alembic/env.py": "from src.core.migrations import run_module_env\n\nrun_module_env('x')  # expect: MIG-003\n",
    "alembic/versions/0002_bad.py": """\
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
NAME = "orders_notes"


def upgrade() -> None:
    op.create_table(NAME, sa.Column("item_id", sa.Integer, sa.ForeignKey("catalog_items.id")))  # expect: FK-001
    op.add_column("catalog_items", sa.Column("note", sa.Text()))  # expect: MIG-001
    op.execute("DELETE FROM catalog_items WHERE id = 1")  # expect: MIG-001
    op.create_index("ix_x", table_name(), ["id"])  # expect: MIG-002
    with op.batch_alter_table("catalog_items") as batch_op:  # expect: MIG-001
        batch_op.drop_column("note")
    op.execute("UPDATE orders SET id = id")


def table_name() -> str:
    return "orders"


def downgrade() -> None:
    op.drop_table("orders_notes")
    op.drop_table("users")  # expect: MIG-001
""",
}
# Declared dependencies (DEP): an import not declared, declarations never used or naming nothing, a cycle.
BAD_BILLING = {
    "settings.py": 'depends_on = ("orders", "shipping")  # expect: DEP-002 DEP-003 DEP-004\n',
    "services/__init__.py": (
        "from modules.catalog.services import get_item  # expect: DEP-001\n\n\n"
        "async def total(*, item_id: int) -> int:\n"
        '    """The total."""\n'
        "    return (await get_item(item_id=item_id)).id\n"
    ),
    # Subscribing to another module's event is a use of that module too: declared or reported.
    "tasks/__init__.py": "from modules.catalog.events import ItemAdded  # expect: DEP-001\n\n__all__ = ['ItemAdded']\n",
}
CORE_IMPORT = "from modules.catalog.services import get_item  # expect: IMP-002\n\n__all__ = ['get_item']\n"
# Core reaching up into routes breaks the src-layers contract (app > routes > middleware > core).
LAYER_IMPORT = "from src.routes import health  # expect: IMP-003\n\n__all__ = ['health']\n"


def expected_markers(root: Path) -> set[Finding]:
    found = set()
    for path in [*root.joinpath("modules").rglob("*.py"), *root.joinpath("src").rglob("*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if match := re.search(r"# expect: ([A-Z0-9 -]+)$", line):
                found |= {(path.relative_to(root).as_posix(), number, rule) for rule in match.group(1).split()}
    return found


@pytest.fixture(scope="module")
def base(project: Callable[..., Path]) -> Path:
    # Keycloak without the example module: no module of another engineer's template is involved here.
    return project(auth="keycloak", with_example_module=False)


def copy_of(base: Path, dst: Path) -> Path:
    shutil.copytree(base, dst, ignore=shutil.ignore_patterns(".venv", "__pycache__", ".*_cache"))
    return dst


def validate(base: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The copy's own validator, run with the rendered project's environment."""
    return run(
        [base / ".venv" / "bin" / "python", root / "scripts" / "validate_structure.py", *args], root, check=False
    )


def findings(base: Path, root: Path) -> set[Finding]:
    result = validate(base, root, "--format", "json")
    assert result.returncode in {0, 1}, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is (result.returncode == 0)
    return {(f["path"], f["line"], f["rule"]) for f in report["findings"]}


def test_modules_using_services_and_schemas_pass(base: Path, tmp_path: Path) -> None:
    root = copy_of(base, tmp_path / "my_api")
    write_module(root, "catalog", CATALOG_EVENTS)
    write_module(root, "orders", CLEAN_ORDERS | ORDERS_HANDLER)
    result = validate(base, root)
    assert result.returncode == 0, result.stdout
    assert "no findings in 2 module(s)" in result.stderr

    graph = validate(base, root, "--graph")
    assert graph.returncode == 0
    assert graph.stdout.startswith("graph LR\n")
    assert "m_orders -->|events, schemas, services| m_catalog" in graph.stdout


NO_CACHE = {
    "services/__init__.py": (
        "from modules.notes.schemas import ItemRead\n\n\n"
        "async def get_item(*, item_id: int) -> ItemRead:\n"
        '    """One item."""\n'
        "    return ItemRead(id=item_id)\n"
    ),
}
CACHING = {
    "services/__init__.py": (
        "from modules.notes.schemas import ItemRead\nfrom src.core.cache import cached\n\n\n"
        '@cached(prefix="notes", key="{item_id}", ttl=60)\n'
        "async def get_item(*, item_id: int) -> ItemRead:\n"
        '    """One item."""\n'
        "    return ItemRead(id=item_id)\n"
    ),
}


def test_a_cache_package_is_required_only_of_a_module_that_caches(base: Path, tmp_path: Path) -> None:
    root = copy_of(base, tmp_path / "my_api")
    write_module(root, "notes", NO_CACHE)
    shutil.rmtree(root / "modules" / "notes" / "cache")
    assert findings(base, root) == set()

    write_module(root, "notes", CACHING)
    shutil.rmtree(root / "modules" / "notes" / "cache")
    assert findings(base, root) == {("modules/notes/cache/__init__.py", 1, "LAYOUT-001")}
    said = validate(base, root).stdout
    assert "module notes uses the cache but has no cache/__init__.py" in said, said


def test_every_planted_violation_is_reported_at_its_line(base: Path, tmp_path: Path) -> None:
    root = copy_of(base, tmp_path / "my_api")
    write_module(root, "catalog", CATALOG_EVENTS)
    write_module(root, "orders", BAD_ORDERS)
    write_module(root, "payments", {"__init__.py": "ROUTES = []\n"})  # expect LAYOUT-002
    write_module(root, "billing", BAD_BILLING)
    # LAYOUT-004: its tables catalog_x_* match catalog's prefix too.
    write_module(root, "catalog_x", {"settings.py": "depends_on = tuple(['catalog'])  # expect: DEP-005\n"})
    shutil.rmtree(root / "modules" / "payments" / "enums")
    (root / "modules" / "stray").mkdir()
    (root / "modules" / "stray" / "code.py").write_text("X = 1\n")
    (root / "src" / "core" / "reaches_in.py").write_text(CORE_IMPORT)
    (root / "src" / "core" / "reaches_up.py").write_text(LAYER_IMPORT)

    expected = expected_markers(root) | {
        ("modules/payments/__init__.py", 1, "LAYOUT-002"),
        ("modules/payments/enums/__init__.py", 1, "LAYOUT-001"),
        ("modules/stray", 1, "LAYOUT-003"),
        ("modules/catalog_x", 1, "LAYOUT-004"),
    }
    rules = {"IMP", "TBL", "FK", "CACHE", "ROUTE", "MIG", "LAYOUT", "DEP"}
    assert {rule.split("-")[0] for _, _, rule in expected} >= rules
    assert findings(base, root) == expected

    text = validate(base, root)
    assert text.returncode == 1
    first = "modules/orders/alembic/env.py:3: MIG-003 alembic/env.py runs the environment of 'x'"
    assert first in text.stdout
    assert '    fix: call run_module_env("orders")' in text.stdout

    annotations = validate(base, root, "--format", "github").stdout.splitlines()
    assert len(annotations) == len(expected)
    assert any(a.startswith("::error file=modules/orders/alembic/env.py,line=3,title=MIG-003::") for a in annotations)

    graph = validate(base, root, "--graph").stdout
    assert "m_orders -.->|cache, models, services ✗| m_catalog" in graph
    assert "m_billing -.->|events, services, undeclared ✗| m_catalog" in graph  # imported, not declared
    assert "m_billing -.->|never imported ✗| m_orders" in graph  # declared, not imported
    said = validate(base, root).stdout
    assert "DEP-004 modules depend on each other in a cycle: billing -> orders -> billing" in said


def test_missing_contract_and_unparsable_file(base: Path, tmp_path: Path) -> None:
    root = copy_of(base, tmp_path / "my_api")
    write_module(root, "catalog", {"services/broken.py": "def oops(:\n"})
    assert findings(base, root) == {("modules/catalog/services/broken.py", 1, "PARSE-001")}

    (root / "modules" / "catalog" / "services" / "broken.py").unlink()
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('id = "modules-independent"', 'id = "renamed"'))
    line = text.splitlines().index("[tool.importlinter]") + 1
    assert findings(base, root) == {("pyproject.toml", line, "IMP-000")}


def test_usage_errors_exit_2(base: Path, tmp_path: Path) -> None:
    assert validate(base, base, "--format", "xml").returncode == 2
    not_a_project = validate(base, base, "--root", str(tmp_path))
    assert not_a_project.returncode == 2
    assert "is not a project" in not_a_project.stderr


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_every_answer_combination_has_no_findings(project: Callable[..., Path], answers: dict[str, object]) -> None:
    root = project(**answers)
    result = validate(root, root)
    assert result.returncode == 0, result.stdout + result.stderr
