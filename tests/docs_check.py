"""Checks a rendered project's docs against the project itself.

- `broken_links(project)`: every relative link between README.md and docs/**/*.md resolves, to a
  file and, with `#anchor`, to a heading of it; every page under docs/ is linked from docs/index.md.
- `unknown_names(project)`: every `scripts/*.py`, `src/`, `modules/`, `tests/`, `config/` and
  `deploy/` path, `make` target, configuration key (`cache.backend`, `APP_CACHE__BACKEND`) and
  command-line flag of a script that a page names exists in the project. What exists is read from
  the project (its files, its Makefile, its `Settings` class, each script's `--help`), never from a
  list kept here.

    uv run python tests/docs_check.py PROJECT     # prints each problem; exit 1 when there is one
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SCRIPT = re.compile(r"\bscripts/([\w/]+\.py)\b")
PATH = re.compile(r"(?<![\w./-])((?:src|modules|tests|config|deploy)/[\w./<>-]*)")
MAKE = re.compile(r"\bmake ([a-z][a-z-]*)")
CONFIG_KEY = re.compile(r"^[a-z_]+(?:\.[a-z_0-9]+)+$")
ENV_KEY = re.compile(r"\bAPP_([A-Z][A-Z0-9_]*)")
FILE_SUFFIXES = {"py", "yml", "yaml", "md", "json", "toml", "ini", "txt", "db"}
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*)")

# Dumps every key path of the project's Settings (dict-valued fields end with `.*`).
SETTINGS_KEYS = """
import json, typing
from pydantic import BaseModel
from src.core.config import Settings

def walk(model, prefix):
    for name, info in model.model_fields.items():
        path = prefix + name
        yield path
        for arg in (info.annotation, *typing.get_args(info.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from walk(arg, path + ".")
            elif typing.get_origin(arg) is dict:
                yield path + ".*"
                value = typing.get_args(arg)[1]
                if isinstance(value, type) and issubclass(value, BaseModel):
                    yield from walk(value, path + ".*.")

keys = set(walk(Settings, ""))
# Each module's own section (`modules.<name>.<key>`), from its settings.py.
from src.core.module_loader import manifests
for name, manifest in manifests().items():
    keys.add("modules." + name)
    if manifest.settings_model is not None:
        keys |= set(walk(manifest.settings_model, "modules." + name + "."))
print(json.dumps(sorted(keys)))
"""


def pages(project: Path) -> list[Path]:
    return [project / "README.md", *sorted((project / "docs").rglob("*.md"))]


def split_code(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The prose (fenced blocks removed) and the fenced blocks as (language, body)."""
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]
    return FENCE.sub("", text), blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    prose, _ = split_code(page.read_text())
    return {slug(line.lstrip("#")) for line in prose.splitlines() if line.startswith("#")}


def broken_links(project: Path) -> list[str]:
    problems = []
    for page in pages(project):
        prose, _ = split_code(page.read_text())
        for target in LINK.findall(CODE_SPAN.sub("", prose)):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(project)}: link {target}"
            if not resolved.exists():
                problems.append(f"{where}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{where}: no heading #{anchor}")
    index = project / "docs" / "index.md"
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in LINK.findall(index.read_text())}
    for page in sorted((project / "docs").rglob("*.md")):
        if page != index and page.resolve() not in linked:
            problems.append(f"docs/index.md: does not link {page.relative_to(project)}")
    return problems


@dataclass
class Names:
    """What exists in the rendered project."""

    project: Path
    config_keys: set[str] = field(default_factory=set)
    make_targets: set[str] = field(default_factory=set)
    flags: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, project: Path) -> Names:
        python = str(project / ".venv" / "bin" / "python")
        dumped = subprocess.run([python, "-c", SETTINGS_KEYS], cwd=project, capture_output=True, text=True, check=True)
        makefile = (project / "Makefile").read_text()
        names = cls(project, set(json.loads(dumped.stdout)), set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M)))
        for script in sorted((project / "scripts").glob("*.py")):
            shown = subprocess.run([python, str(script), "--help"], cwd=project, capture_output=True, text=True)
            names.flags[script.name] = set(FLAG.findall(shown.stdout)) | {"--help"}
        return names

    def config_key(self, key: str) -> bool:
        parts = key.split(".")
        if parts[0] == "modules" and len(parts) > 1 and not (self.project / "modules" / parts[1]).is_dir():
            # A module the reader may create (`modules.orders.get_ttl`): its key must be one a module
            # of this project has, or the project has none yet.
            known = {k.split(".", 2)[2] for k in self.config_keys if k.startswith("modules.") and k.count(".") >= 2}
            return len(parts) == 2 or not known or ".".join(parts[2:]) in known
        # A key under a dict-valued field (`http.services.billing.base_url`) matches its `*` pattern.
        candidates = {".".join(p if i != j else "*" for i, p in enumerate(parts)) for j in range(len(parts))}
        return key in self.config_keys or bool(candidates & self.config_keys)

    def python_module(self, dotted: str) -> bool:
        path = self.project / dotted.replace(".", "/")
        return path.is_dir() or path.with_suffix(".py").is_file()

    def path(self, rel: str) -> bool:
        rel = rel.rstrip(".,:;)")
        parts = [p for p in rel.split("/") if p]
        if parts[0] == "modules" and len(parts) == 2:
            return True  # `modules/orders`: a module the reader may create
        if parts[0] == "modules" and len(parts) > 2 and not (self.project / "modules" / parts[1]).is_dir():
            # A module the reader may create (`modules/orders/routes/`, `modules/<name>/cache/`): its
            # first part must be one every module of this project has or may have.
            existing = [d for d in (self.project / "modules").iterdir() if (d / "__init__.py").is_file()]
            return not existing or any((d / parts[2]).exists() for d in existing)
        if any(c in rel for c in "<>"):
            return True
        return (self.project / rel).exists()


def unknown_names(project: Path, names: Names | None = None) -> list[str]:
    names = names or Names.read(project)
    top = {key for key in names.config_keys if "." not in key}
    problems = []
    for page in pages(project):
        text = page.read_text()
        prose, blocks = split_code(text)
        code = CODE_SPAN.findall(prose) + [body for _, body in blocks]
        where = str(page.relative_to(project))
        for script in SCRIPT.findall(text):
            if not (project / "scripts" / script).is_file():
                problems.append(f"{where}: scripts/{script} does not exist")
        for rel in PATH.findall(LINK.sub("", text)):
            if not names.path(rel):
                problems.append(f"{where}: {rel} does not exist")
        for snippet in code:
            for target in MAKE.findall(snippet):
                if target not in names.make_targets:
                    problems.append(f"{where}: no make target {target!r}")
            for line in snippet.splitlines():
                script = SCRIPT.search(line)
                if script and script.group(1) in names.flags:
                    for flag in FLAG.findall(line[script.end() :].split("#")[0]):
                        if flag not in names.flags[script.group(1)]:
                            problems.append(f"{where}: scripts/{script.group(1)} has no option {flag}")
        for span in CODE_SPAN.findall(prose):
            key, _, value = span.partition(":")
            if " " in value.strip() or key.rsplit(".", 1)[-1] in FILE_SUFFIXES:
                continue  # a message quoting a key (`cache.backnd: Extra inputs ...`), a file name
            if names.python_module(key):
                continue  # an import path (`modules.users.services`)
            if CONFIG_KEY.match(key) and key.split(".")[0] in top and not names.config_key(key):
                problems.append(f"{where}: no configuration key {key}")
        for env in ENV_KEY.findall(text):
            key = env.lower().replace("__", ".")
            if not env.endswith("_") and not names.config_key(key):
                problems.append(f"{where}: APP_{env} sets no configuration key ({key})")
    return problems


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve()
    found = broken_links(root) + unknown_names(root)
    print("\n".join(found) or "docs: every link and name checks out")
    sys.exit(1 if found else 0)
