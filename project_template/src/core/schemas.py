"""Building blocks for module schemas: PATCH fields and bounded JSON values.

A PATCH body changes only the fields it sends, so its fields default to None,
meaning "not sent" (services read them with `model_dump(exclude_unset=True)`).
For a column that cannot be null, an explicit `null` must then be refused, not
stored: `name: str = PatchField(max_length=200)` accepts a string or nothing,
answers 422 for `null`, and the OpenAPI schema says "string", not "string or null".
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # None means "not sent", not a value a client could send


def PatchField(**constraints: Any) -> Any:  # noqa: N802 - used like pydantic's Field
    """A field of a partial update that may be left out but never set to null."""
    return Field(default=None, json_schema_extra=_no_default, **constraints)


def json_object_size(max_bytes: int) -> Any:
    """An after-validator refusing a JSON value larger than `max_bytes` once serialised."""

    def check(value: Any) -> Any:
        try:
            size = len(orjson.dumps(value))
        except (TypeError, orjson.JSONEncodeError):
            raise ValueError("must be JSON: strings, finite numbers, booleans, null, lists and objects") from None
        if size > max_bytes:
            raise ValueError(f"is {size} bytes as JSON, more than {max_bytes}")
        return value

    return check
