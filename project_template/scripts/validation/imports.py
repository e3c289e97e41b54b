"""IMP: runs the import-linter contracts of pyproject.toml and turns broken ones into findings.

The contracts live in pyproject.toml (`[tool.importlinter]`) so `lint-imports`
gives the same verdict; this module only adds file:line and a fix to each
offending import, and checks that the two contracts the rules rely on exist.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from validation.findings import Finding
from validation.project import Project

INDEPENDENCE = "modules-independent"
CORE = "core-without-modules"
PUBLIC = ("services", "schemas", "events")


def check(project: Project) -> list[Finding]:
    config, line = _contracts(project.root / "pyproject.toml")
    findings = _missing_contracts(config, line)
    if findings:
        return findings
    try:
        report = _run(project.root)
    except Exception as exc:  # any failure of the linter becomes a finding, never a traceback
        project.parse_everything()
        if project.parse_errors:
            return []  # a file that does not parse: PARSE-001 names it
        return [Finding("pyproject.toml", line, "IMP-000", f"import-linter could not run: {exc}", _RUN_FIX)]
    for contract, contract_check in report.get_contracts_and_checks():
        if contract_check.kept:
            continue
        ours = contract.contract_options.get("id") in {INDEPENDENCE, CORE}
        for importer, imported, lineno in sorted(set(_links(contract_check.metadata))):
            # A chain may pass through imports inside one module, or through src/: only the import that
            # enters another module is wrong.
            target = project.module_of(imported)
            if ours and (target is None or target == project.module_of(importer)):
                continue
            findings.append(_finding(project, contract, importer, imported, lineno))
    return findings


_RUN_FIX = "run `uv run lint-imports` to see import-linter's own message"


def _contracts(pyproject: Path) -> tuple[list[dict[str, Any]], int]:
    text = pyproject.read_text(encoding="utf-8")
    line = next((n for n, row in enumerate(text.splitlines(), 1) if row.strip() == "[tool.importlinter]"), 1)
    contracts = tomllib.loads(text).get("tool", {}).get("importlinter", {}).get("contracts", [])
    return [c for c in contracts if isinstance(c, dict)], line


def _missing_contracts(contracts: list[dict[str, Any]], line: int) -> list[Finding]:
    ids = {c.get("id"): c for c in contracts}
    findings = []
    independence = ids.get(INDEPENDENCE, {})
    if independence.get("type") != "independence" or independence.get("modules") != ["modules.*"]:
        findings.append(
            Finding(
                "pyproject.toml",
                line,
                "IMP-000",
                f"the import-linter contract `{INDEPENDENCE}` (independence over modules.*) is missing",
                "restore it from the template (docs/boundaries.md shows it); without it imports are not checked",
            )
        )
    core = ids.get(CORE, {})
    if core.get("type") != "forbidden" or "modules" not in core.get("forbidden_modules", []):
        findings.append(
            Finding(
                "pyproject.toml",
                line,
                "IMP-000",
                f"the import-linter contract `{CORE}` (src.core and src.middleware must not import modules) is missing",
                "restore it from the template (docs/boundaries.md shows it)",
            )
        )
    return findings


def _run(root: Path) -> Any:
    """import-linter's report, built in-process (no cache files written into the project)."""
    import os

    from importlinter import api  # noqa: F401 - importing it configures import-linter
    from importlinter.application import use_cases

    previous = os.getcwd()
    # import-linter finds root packages on sys.path, as `lint-imports` run from the project folder would.
    os.chdir(root)
    sys.path.insert(0, str(root))
    try:
        use_cases._register_built_in_contract_types()
        options = use_cases.read_user_options(str(root / "pyproject.toml"))
        # Its progress display writes to stdout, which belongs to our report (JSON, annotations).
        with contextlib.redirect_stdout(io.StringIO()):
            return use_cases.create_report(options, cache_dir=None)
    finally:
        sys.path.remove(str(root))
        os.chdir(previous)


def _links(metadata: Any) -> Iterator[tuple[str, str, int]]:
    """Every direct import (importer, imported, line) inside a broken contract's chains."""
    if isinstance(metadata, dict):
        if {"importer", "imported", "line_numbers"} <= metadata.keys():
            for lineno in metadata["line_numbers"] or (1,):
                yield metadata["importer"], metadata["imported"], lineno or 1
            return
        for value in metadata.values():
            yield from _links(value)
    elif isinstance(metadata, list | tuple):
        for value in metadata:
            yield from _links(value)


def _finding(project: Project, contract: Any, importer: str, imported: str, line: int) -> Finding:
    path = _path_of(project.root, importer)
    source, target = project.module_of(importer), project.module_of(imported)
    contract_id = contract.contract_options.get("id")
    if contract_id == CORE:
        return Finding(
            path,
            line,
            "IMP-002",
            f"{importer} imports {imported}, so src/core or src/middleware depend on a module",
            "invert the dependency: let the module register itself with core (a hook or setting) "
            "instead of core importing the module",
        )
    if contract_id == INDEPENDENCE:
        public = f"modules.{target}.services"
        return Finding(
            path,
            line,
            "IMP-001",
            f"module {source} imports {imported}, an internal of module {target}"
            if source
            # Outside modules/ (src/...), but on a path from another module to this one's internals.
            else f"{importer} imports {imported}, an internal of module {target}, and another module imports it",
            f"call a function of {public} (or use a model of modules.{target}.schemas, or handle an event "
            f"of modules.{target}.events); add one to {public} if none fits",
        )
    message = f"{importer} imports {imported}, which contract '{contract.name}' forbids"
    return Finding(path, line, "IMP-003", message, _RUN_FIX)


def _path_of(root: Path, dotted: str) -> str:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate.relative_to(root).as_posix()
    return dotted
