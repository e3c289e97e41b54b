"""Refuse a new module whose name extends a sibling's with `_` (standard library only).

Runs as a Copier task on `copier copy` of a module, in the new module's folder
(modules/<name>/): `orders_archive` beside `orders` would share its table
prefix `orders_*`. A validator cannot see the file system, hence a task; Copier
removes the new folder when it fails. scripts/create_module.py checks the same
rule before Copier runs; validate_structure reports it as LAYOUT-004.
"""

from __future__ import annotations

import sys
from pathlib import Path

from names import shared_prefix_problem


def main() -> None:
    name = sys.argv[1]
    siblings = [p.name for p in Path.cwd().parent.iterdir() if (p / "__init__.py").is_file()]
    if problem := shared_prefix_problem(name, siblings):
        sys.exit(f"module_name {problem}")


if __name__ == "__main__":
    main()
