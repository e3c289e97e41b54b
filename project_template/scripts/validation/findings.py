"""A finding: where a boundary is crossed, which rule, and how to fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str
    fix: str

    def text(self) -> str:
        return f"{self.path}:{self.line}: {self.rule} {self.message}\n    fix: {self.fix}"

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)
