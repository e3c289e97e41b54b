"""`@cached`: read-through caching of an async function's result under an explicit, stable key."""

from __future__ import annotations

import datetime
import decimal
import enum
import functools
import hashlib
import inspect
import re
import string
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, Protocol, TypeVar, get_type_hints

import orjson
from pydantic import BaseModel

from src.core.cache.namespace import CacheNamespace, KeyPart, KeySpec, json_default

P = ParamSpec("P")
R = TypeVar("R")
_PLAIN = (str, int, float, enum.Enum, uuid.UUID, datetime.date, datetime.time, decimal.Decimal)


class Decorator(Protocol):
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Callable[P, Coroutine[Any, Any, R]]: ...


_namespaces: dict[str, CacheNamespace] = {}


def namespace(name: str) -> CacheNamespace:
    """The shared `CacheNamespace` for `name` (what `cached(prefix="...")` uses)."""
    if name not in _namespaces:
        _namespaces[name] = CacheNamespace(name)
    return _namespaces[name]


def cached(
    prefix: str | CacheNamespace,
    ttl: int | Callable[[], int] | None = None,
    *,
    key: KeySpec = None,
    model: Any = None,
    cache_none: bool = False,
) -> Decorator:
    """Cache an async function's result under `<prefix>:<key>`.

    `key` is a format string over the arguments (`"{user_id}"`, `"{query.page}"`), a callable
    taking the same arguments, or None for `<function>:<name>=<value>,...` built from every
    argument but `self`/`cls` (an argument that is not a plain value must then be keyed explicitly).
    The return annotation (or `model`, when the annotation cannot be resolved) types the cached
    value, so Pydantic models come back as models.
    `None` results are not cached unless `cache_none=True`.
    `ttl` may be a function, asked at each call: a module's settings are read at start-up,
    after its services were imported (`ttl=lambda: settings_of(Settings).get_ttl`).
    """
    ns = prefix if isinstance(prefix, CacheNamespace) else namespace(prefix)

    def decorate(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@cached needs an async function, got {fn!r}")
        signature = inspect.signature(fn)
        build_key = _key_builder(fn, signature, key)
        returns: list[Any] = [] if model is None else [model]  # else resolved on first call (forward references)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not returns:
                returns.append(_return_type(fn))
            return await ns.get_or_set(
                build_key(args, kwargs),
                lambda: fn(*args, **kwargs),
                ttl() if callable(ttl) else ttl,
                model=returns[0],
                cache_none=cache_none,
            )

        return wrapper

    return decorate


def _return_type(fn: Callable[..., Any]) -> Any:
    try:
        return get_type_hints(fn).get("return", Any)
    except NameError as exc:
        # Silently caching as plain JSON would hand dicts back where models were promised.
        message = f"@cached {fn.__qualname__}: cannot resolve its return annotation ({exc}); pass model="
        raise TypeError(message) from exc


def _key_builder(
    fn: Callable[..., Any], signature: inspect.Signature, key: KeySpec
) -> Callable[[tuple[Any, ...], dict[str, Any]], KeyPart]:
    if callable(key):
        call = key
        return lambda args, kwargs: call(*args, **kwargs)

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments

    if isinstance(key, str):
        template = key
        fields = {re.split(r"[.\[]", name, maxsplit=1)[0] for _, name, _, _ in string.Formatter().parse(key) if name}

        def from_template(args: tuple[Any, ...], kwargs: dict[str, Any]) -> KeyPart:
            # Keyword-only service calls name every field already: skip the (slower) signature binding.
            if fields <= kwargs.keys():
                return template.format(**kwargs)
            return template.format(**bind(args, kwargs))

        return from_template

    name = fn.__qualname__.replace("<locals>.", "")

    def default(args: tuple[Any, ...], kwargs: dict[str, Any]) -> KeyPart:
        arguments = bind(args, kwargs).items()
        parts = [f"{arg}={_key_value(fn, arg, value)}" for arg, value in arguments if arg not in {"self", "cls"}]
        return f"{name}:{','.join(parts)}" if parts else name

    return default


def _key_value(fn: Callable[..., Any], arg: str, value: Any) -> str:
    if value is None or isinstance(value, _PLAIN):
        return str(value.value if isinstance(value, enum.Enum) else value)
    if isinstance(value, BaseModel | dict | list | tuple):
        # Structured arguments (filters, queries): a short, stable digest of their canonical JSON.
        data = orjson.dumps(value, default=json_default, option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(data, digest_size=12).hexdigest()
    raise TypeError(
        f"@cached {fn.__qualname__}: cannot build a key from argument {arg!r} ({type(value).__name__}); "
        'pass key="{...}" naming the arguments that identify the result'
    )
