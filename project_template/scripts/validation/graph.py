"""The module dependency graph: which module uses which module, drawn as Mermaid."""

from __future__ import annotations

from collections import defaultdict

from validation.astutil import imports
from validation.imports import PUBLIC
from validation.project import Project


def edges(project: Project) -> dict[tuple[str, str], set[str]]:
    """(user, used) -> the parts of `used` it imports ("services", "schemas", or an internal)."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for module in project.modules:
        for source in project.sources(module, complete=True):
            for item in imports(source.imports, source.package):
                candidates = [item.module] if not item.names else [f"{item.module}.{n}" for n in item.names]
                for name in candidates:
                    parts = name.split(".")
                    other = project.module_of(name)
                    if other and other != source.module and other in project.modules:
                        found[(source.module, other)].add(parts[2] if len(parts) > 2 else "package")
    return found


def mermaid(project: Project) -> str:
    lines = ["graph LR"]
    # Node ids get a prefix: a module may be called `end`, a Mermaid keyword.
    lines += [f"    m_{name}[{name}]" for name in project.modules]
    for (user, used), parts in sorted(edges(project).items()):
        label = ", ".join(sorted(parts))
        if set(parts) <= set(PUBLIC):
            lines.append(f"    m_{user} -->|{label}| m_{used}")
        else:
            lines.append(f"    m_{user} -.->|{label} ✗| m_{used}")  # an internal: IMP-001 reports it
    return "\n".join(lines) + "\n"
