"""docs/modules-summary.md: generated from the code (`validate_structure.py --describe`), never stale, never wrong."""

from __future__ import annotations

import re
import subprocess
import sys

from fastapi import FastAPI

from src.core.config import PROJECT_ROOT, Settings

SCRIPT = PROJECT_ROOT / "scripts" / "validate_structure.py"
SUMMARY = PROJECT_ROOT / "docs" / "modules-summary.md"
REGENERATE = "uv run python scripts/validate_structure.py --describe --write"


def describe() -> str:
    result = subprocess.run(  # noqa: S603 - our own script, no shell
        [sys.executable, str(SCRIPT), "--describe"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_summary_page_is_current() -> None:
    assert SUMMARY.is_file(), f"docs/modules-summary.md is missing: run `{REGENERATE}`"
    assert SUMMARY.read_text(encoding="utf-8") == describe(), f"docs/modules-summary.md is out of date: `{REGENERATE}`"


def test_the_routes_it_lists_are_the_ones_the_app_serves(app: FastAPI, settings: Settings) -> None:
    listed = set(re.findall(r"^\| ([A-Z, ]+) \| `(/[^`]*)` \|$", describe(), flags=re.MULTILINE))
    # Read from the OpenAPI schema: FastAPI keeps included routers apart from `app.routes`.
    owners = {f"{settings.api_prefix}/{m.name}" for m in app.state.modules}
    served = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if "/".join(path.split("/")[:4]) in owners
        for method in operations
    }
    assert listed == served
