"""The name rules of projects, modules and model classes: the one place they live (standard library only).

The data (patterns, keywords, reserved names, limits, messages) is in
names.json beside this file. copier.yml's validators read that same file
(its computed `name_rules`); `scripts/init_project.py` and the hooks import
this module; every generated project gets both files as `scripts/names.py`
and `scripts/names.json` (rendered from these two, so they cannot drift).
Each check returns None for a good name, or the message to show after the
name of the field being checked. The template's tests hold copier.yml's
validators to the same verdicts and messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

RULES: dict[str, Any] = json.loads(Path(__file__).with_name("names.json").read_text(encoding="utf-8"))
IDENTIFIER = re.compile(RULES["identifier"])
CLASS_NAME = re.compile(RULES["class_name"])
KEYWORDS = frozenset(RULES["keywords"])  # `class` cannot name an imported file, nor `None` a class
SOFT_KEYWORDS = frozenset(RULES["soft_keywords"])  # `match`, `type`: legal, and confusing as a package name
RESERVED_PROJECT_NAMES = frozenset(RULES["reserved_project_names"])
RESERVED_MODULE_NAMES = frozenset(RULES["reserved_module_names"])
MAX_MODULE_NAME: int = RULES["max_module_name"]  # PostgreSQL names stop at 63: alembic_version_<module>


def message(kind: str, **fields: object) -> str:
    """A message of names.json, filled in (the same `%(name)s` fields copier.yml's validators fill)."""
    return str(RULES["messages"][kind]) % fields


def identifier_problem(name: str) -> str | None:
    """What is wrong with a lowercase name (project or module), before the lists of names taken."""
    if not IDENTIFIER.fullmatch(name):
        return message("identifier", name=name)
    if name in KEYWORDS or name in SOFT_KEYWORDS:
        return message("keyword", name=name)
    return None


def project_name_problem(name: str) -> str | None:
    """None for a good project name (the package name, the service name in logs and metrics)."""
    if problem := identifier_problem(name):
        return problem
    if name in RESERVED_PROJECT_NAMES:
        return message("reserved_project", name=name)
    return None


def module_name_problem(name: str) -> str | None:
    """None for a good module name (its folder under modules/, its table prefix, its URL prefix)."""
    if problem := identifier_problem(name):
        return problem
    if len(name) > MAX_MODULE_NAME:
        return message("too_long", name=name, length=len(name), max=MAX_MODULE_NAME)
    if name in RESERVED_MODULE_NAMES:
        return message("reserved_module", name=name)
    return None


def snake(name: str) -> str:
    """`OrderLine` -> `order_line` (the file a class lives in)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def class_name_problem(name: str) -> str | None:
    """None for a good model class name: CamelCase, and its snake_case file importable."""
    if not CLASS_NAME.fullmatch(name) or name in KEYWORDS:
        return message("class_name", name=name)
    # Soft keywords (`match.py`, `type.py`) stay importable; hard ones do not.
    if snake(name) in KEYWORDS:
        return message("class_file", name=name, file=snake(name))
    return None


def shared_prefix_problem(name: str, others: Iterable[str]) -> str | None:
    """A module owns the tables `<name>` and `<name>_*`: no module's name may extend another's with `_`."""
    for other in sorted(others):
        if other != name and (name.startswith(f"{other}_") or other.startswith(f"{name}_")):
            return message("shared_prefix", name=name, other=other, short=min(name, other, key=len))
    return None
