"""The generated project's docs cannot rot: links resolve, names exist, examples run.

`uv run pytest -m docs` runs these alone. Each auth mode gets one fresh project in which every
page of docs/examples/ runs in turn, as a reader would run them one after the other.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docs_check import Names, broken_links, unknown_names
from tests.docs_examples import blocks, run_page, shows

pytestmark = pytest.mark.docs

TOPICS = [
    "project-structure", "modules", "routing", "configuration", "database", "migrations", "cache",
    "http-client", "logging", "observability", "auth", "clean-code", "errors",
]  # fmt: skip
EXAMPLES = [
    "create-a-module", "cache-a-service-call", "protect-routes", "add-a-metric", "call-another-service",
    "modules-working-together",
]  # fmt: skip
MODES = [
    pytest.param({"auth": "rbac", "with_example_module": True}, id="rbac"),
    pytest.param({"auth": "keycloak", "with_example_module": True, "with_tracing": True}, id="keycloak"),
]


@pytest.mark.parametrize("answers", MODES)
def test_pages_links_and_names(project: Callable[..., Path], answers: dict[str, object]) -> None:
    root = project(**answers)
    docs = root / "docs"
    for name in TOPICS:
        assert (docs / f"{name}.md").is_file(), name
    for name in EXAMPLES:
        assert (docs / "examples" / f"{name}.md").is_file(), name
    readme = (root / "README.md").read_text()
    assert "docs/index.md" in readme
    assert broken_links(root) == []
    assert unknown_names(root) == []
    auth = (docs / "auth.md").read_text()
    other = "Keycloak mode" if answers["auth"] == "rbac" else "RBAC mode"
    assert f"## {other}" not in auth  # only the generated mode is documented


@pytest.mark.parametrize("answers", MODES)
def test_examples_run(fresh_project: Callable[..., Path], answers: dict[str, object]) -> None:
    root = fresh_project(**answers)
    for name in EXAMPLES:
        run_page(root, root / "docs" / "examples" / f"{name}.md")


def test_a_wrong_name_or_link_is_reported(project: Callable[..., Path], tmp_path: Path) -> None:
    root = tmp_path / "my_api"
    shutil.copytree(project(auth="rbac", with_example_module=True), root, symlinks=True)
    names = Names.read(root)
    page = root / "docs" / "cache.md"
    page.write_text(
        page.read_text()
        + "\nRun `uv run python scripts/warm_cache.py`, `make warm`, set `cache.warm_ttl` or"
        " `APP_CACHE__WARM=1`, see `src/core/cache/warm.py` and `modules/users/warmers/`,"
        " run `uv run python scripts/run_migrations.py --warm` and read [the guide](warming.md#why).\n"
    )
    found = "\n".join(unknown_names(root, names) + broken_links(root))
    for wrong in [
        "scripts/warm_cache.py does not exist",
        "no make target 'warm'",
        "no configuration key cache.warm_ttl",
        "APP_CACHE__WARM sets no configuration key",
        "src/core/cache/warm.py does not exist",
        "modules/users/warmers/ does not exist",
        "scripts/run_migrations.py has no option --warm",
        "link warming.md#why: no such file",
    ]:
        assert wrong in found, wrong
    assert len(found.splitlines()) == 8, found


def test_the_runner_checks_shown_output() -> None:
    page = "```bash\necho one two three\n```\n\n```text\none ... three\n```\n"
    (command, shown) = blocks(page)
    assert (command.kind, shown.kind) == ("bash", "text")
    assert shows("x\none two three\n", shown.body)
    assert not shows("one two\n", shown.body)
    assert re.search("serve", Path(__file__).with_name("docs_examples.py").read_text())
