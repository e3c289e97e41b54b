"""Check that every module under modules/ stays independent of the others.

    uv run python scripts/validate_structure.py                  # findings as path:line: RULE message
    uv run python scripts/validate_structure.py --format json    # for CI (or github: workflow annotations)
    uv run python scripts/validate_structure.py --graph          # module dependency graph (Mermaid)
    uv run python scripts/validate_structure.py --describe       # per module: routes, tables, settings, ...
    uv run python scripts/validate_structure.py --describe --write   # ... into docs/modules-summary.md

Exit status: 0 clean, 1 findings, 2 usage error. The rules are explained in docs/boundaries.md.
"""

from __future__ import annotations

import project_python  # noqa: F401  (first: runs this script in the project's environment)

# isort: split
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validation import validate
from validation.describe import SUMMARY, describe, write
from validation.graph import mermaid
from validation.project import Project

DEFAULT_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default="text",
        help="text (default), json, or github (workflow annotations on the offending lines)",
    )
    parser.add_argument("--graph", action="store_true", help="print the module dependency graph as Mermaid and exit")
    parser.add_argument(
        "--describe", action="store_true", help="print the module summary (Markdown: routes, tables, settings...)"
    )
    parser.add_argument("--write", action="store_true", help=f"with --describe: write it to {SUMMARY}")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="project folder (default: this project)")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    if not (root / "modules").is_dir() or not (root / "pyproject.toml").is_file():
        parser.error(f"{root} is not a project: it needs modules/ and pyproject.toml")

    if args.write and not args.describe:
        parser.error("--write goes with --describe")
    if args.describe and args.write:
        print(f"wrote {write(root).relative_to(root)}")
        return 0
    if args.describe:
        print(describe(Project(root)), end="")
        return 0
    if args.graph:
        print(mermaid(Project(root)), end="")
        return 0

    started = time.perf_counter()
    project, findings = validate(root)
    elapsed = time.perf_counter() - started
    if args.format == "json":
        report = {
            "ok": not findings,
            "modules": project.modules,
            "findings": [f.as_dict() for f in findings],
            "seconds": round(elapsed, 3),
        }
        print(json.dumps(report, indent=2))
    elif args.format == "github":
        for f in findings:
            text = f"{f.message} (fix: {f.fix})".replace("%", "%25").replace("\n", "%0A")
            print(f"::error file={f.path},line={f.line},title={f.rule}::{text}")
    else:
        for finding in findings:
            print(finding.text())
        verdict = f"{len(findings)} finding(s)" if findings else "no findings"
        print(f"{verdict} in {len(project.modules)} module(s), {elapsed:.2f} s", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
