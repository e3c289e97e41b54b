"""The generated project's docs cannot rot: links resolve, names exist, examples run.

`uv run pytest -m docs` runs these alone. Each auth mode gets one fresh project in which every
page of docs/examples/ runs in turn, as a reader would run them one after the other.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docs_check import Names, broken_links, unknown_names
from tests.docs_examples import blocks, run_page, shows
from tests.helpers import REPO, free_port, run

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
EXAMPLE_SOURCES = REPO / "project_template" / "docs" / "examples"


def depends_on_auth(name: str) -> bool:
    """Whether the page's text changes with the auth mode (its template tests `auth`)."""
    source = EXAMPLE_SOURCES / f"{name}.md.jinja"
    return source.is_file() and "auth ==" in source.read_text()


@pytest.mark.parametrize("answers", MODES)
def test_docs_of_a_fresh_project(fresh_project: Callable[..., Path], answers: dict[str, object]) -> None:
    """Every page is there and checks out; then the examples run, one after the other, as a reader would.

    RBAC runs all six; Keycloak the ones whose text differs between the modes (the rest are the
    same commands on the same code), which keeps both modes under a few minutes.
    """
    root = fresh_project(**answers)
    docs = root / "docs"
    for name in TOPICS:
        assert (docs / f"{name}.md").is_file(), name
    for name in EXAMPLES:
        assert (docs / "examples" / f"{name}.md").is_file(), name
    assert "docs/index.md" in (root / "README.md").read_text()
    auth = (docs / "auth.md").read_text()
    assert ("## Keycloak mode" in auth) == (answers["auth"] == "keycloak")  # the generated mode only
    assert ("## RBAC mode" in auth) == (answers["auth"] == "rbac")
    assert broken_links(root) == []
    assert unknown_names(root) == []
    for name in [name for name in EXAMPLES if answers["auth"] == "rbac" or depends_on_auth(name)]:
        run_page(root, docs / "examples" / f"{name}.md")
    # The code the pages had the reader write is the project's own code now: it passes the same checks.
    for check in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy", "."]):
        run(["uv", "run", *check], root)


def test_a_wrong_name_or_link_is_reported(project: Callable[..., Path], tmp_path: Path) -> None:
    root = tmp_path / "my_api"
    shutil.copytree(project(auth="rbac", with_example_module=True), root, symlinks=True)
    names = Names.read(root)
    page = root / "docs" / "cache.md"
    page.write_text(
        page.read_text() + "\nRun `uv run python scripts/warm_cache.py`, `make warm`, set `cache.warm_ttl` or"
        " `APP_CACHE__WARM=1`, see `src/core/cache/warm.py`, `modules/users/warmers/` and `config/warm.yml`,"
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
        "config/warm.yml does not exist",
        "scripts/run_migrations.py has no option --warm",
        "link warming.md#why: no such file",
    ]:
        assert wrong in found, wrong
    assert len(found.splitlines()) == 9, found


def test_the_runner_runs_blocks_as_a_reader_would(tmp_path: Path) -> None:
    """Files are written, servers started and stopped, shown output compared: a wrong one fails."""
    port = free_port()
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- file: site/hello.txt -->\n```text\nhello reader\n```\n\n"
        f"<!-- serve: {port} -->\n```bash\ncd site && exec python3 -m http.server {port} --bind 127.0.0.1\n```\n\n"
        f"```bash\ncurl -s http://127.0.0.1:{port}/hello.txt\n```\n\n```text\nhello ... reader\n```\n"
    )
    transcript = run_page(tmp_path, page)
    assert "hello reader" in transcript[-1]
    with pytest.raises(OSError):  # the server was stopped with the page
        socket.create_connection(("127.0.0.1", port), timeout=1)

    page.write_text("```bash\necho one two\n```\n\n```text\none three\n```\n")
    with pytest.raises(AssertionError, match="the output does not show"):
        run_page(tmp_path, page)
    page.write_text("```bash\nfalse\n```\n")
    with pytest.raises(AssertionError, match="exited 1"):
        run_page(tmp_path, page)


def test_shown_output_matches_lines_in_order() -> None:
    (command, shown) = blocks("```bash\necho one two three\n```\n\n```text\none ... three\n```\n")
    assert (command.kind, shown.kind) == ("bash", "text")
    assert shows("x\none two three\n", shown.body)
    assert not shows("one two\n", shown.body)
    assert shows("a\nb\n", "a\nb") and not shows("b\na\n", "a\nb")
