"""The module dependency graph as Mermaid: the declared edges (`depends_on`), and imports that break them."""

from __future__ import annotations

from validation.dependencies import dependencies
from validation.imports import PUBLIC
from validation.project import Project


def edges(project: Project) -> dict[tuple[str, str], set[str]]:
    """(user, used) -> the parts of `used` it imports ("services", "schemas", or an internal)."""
    return {pair: {use.part for use in uses} for pair, uses in dependencies(project).uses.items()}


def mermaid(project: Project) -> str:
    """Solid: declared and used through services/schemas. Dotted with ✗: what DEP or IMP findings report."""
    lines = ["graph LR"]
    # Node ids get a prefix: a module may be called `end`, a Mermaid keyword.
    lines += [f"    m_{name}[{name}]" for name in project.modules]
    used = edges(project)
    known = dependencies(project).declared.items()
    declared = {(m, d) for m, decl in known for d in decl.names if d in project.modules}
    for user, target in sorted(declared | set(used)):
        parts = used.get((user, target), set())
        label = ", ".join(sorted(parts)) or "never imported"
        if (user, target) in declared and parts and parts <= set(PUBLIC):
            lines.append(f"    m_{user} -->|{label}| m_{target}")
        else:
            reason = "" if (user, target) in declared else ", undeclared"
            lines.append(f"    m_{user} -.->|{label}{reason} ✗| m_{target}")
    return "\n".join(lines) + "\n"
