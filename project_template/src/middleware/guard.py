"""Hostile input stopped at the door: oversized requests, and text no database can store.

One pure ASGI middleware, inside the conversation middleware (its answers carry the
conversation ID and the access line), so every module's routes get it without
writing anything:

- headers larger than `limits.max_header_bytes` in total: 431. uvicorn's httptools
  parser (the `uvicorn[standard]` default) accepts headers of any size.
- a body larger than the route's limit (`limits.max_body_bytes`, or `body_limit(...)`
  on an upload endpoint): 413, from the declared `Content-Length` before a byte is
  read, or while a chunked body streams in; nothing larger is ever buffered.
- text PostgreSQL cannot store (NUL, lone UTF-16 surrogates) and numbers JSON cannot
  round-trip (`1e400` overflows to infinity, `NaN`): 422 naming the field, in the
  shape of FastAPI's validation errors. Checked in the path, the query string, JSON
  bodies and forms. PostgreSQL refuses NUL in `text` and `jsonb` (a 500 without this);
  SQLite would store it and silently turn infinity into null.

Why hand-written: Starlette's own body limit answers `text/plain` (and replaces any
JSON answer when `Content-Length` is too large), and nothing off the shelf refuses
NUL by field. The cost stays off the common path: a small GET pays a header loop and
two substring searches; body chunks get a C-level search, and only a chunk that
looks suspicious is parsed again to find the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MiB = 1024 * 1024
BODY_LIMIT_ATTRIBUTE = "__max_body_bytes__"
# In the raw body: a JSON escape of NUL or of a UTF-16 surrogate, a non-finite literal,
# an exponent of three digits or a 300-digit run (either may overflow a float).
_SUSPECT_JSON = re.compile(rb"\\u0000|\\u[dD][89a-fA-F]|NaN|Infinity|[eE][+]?[0-9]{3}|[0-9]{300}")
# Forms and query strings decode bytes as UTF-8 with replacement: only NUL gets through.
_SUSPECT_FORM = re.compile(rb"%00|\x00")
_WINDOW = 310  # bytes kept from the previous chunk, so a pattern split across chunks is still seen
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")

F = TypeVar("F", bound=Callable[..., Any])


def body_limit(max_bytes: int) -> Callable[[F], F]:
    """Raise (or lower) the body limit of one endpoint: `@body_limit(50 * MiB)` under `@router.post(...)`."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, BODY_LIMIT_ATTRIBUTE, max_bytes)
        return endpoint

    return mark


class InputRefused(HTTPException):
    """Raised from `receive`: FastAPI's handler answers it as JSON like any HTTPException."""


def unstorable(value: str) -> str | None:
    """Why PostgreSQL cannot store this text, or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    return "NUL character (\\u0000)" if found.group() == "\x00" else "lone UTF-16 surrogate"


def refusal(loc: list[str | int], message: str, value: Any) -> InputRefused:
    """A 422 in the shape of FastAPI's request validation errors."""
    # Echoed back as JSON, which cannot carry a lone surrogate either.
    where: list[str | int] = [_SURROGATE.sub("\ufffd", part) if isinstance(part, str) else part for part in loc]
    shown = _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else None
    error = {"type": "value_error", "loc": where, "msg": f"Value error, {message}", "input": shown}
    return InputRefused(422, detail=[error])


def _check_text(loc: list[str | int], value: str) -> None:
    problem = unstorable(value)
    if problem is not None:
        raise refusal(loc, f"text holds a {problem}, which cannot be stored", value)


def check_pairs(where: str, pairs: list[tuple[str, str]]) -> None:
    """Query string or form fields: the first unstorable name or value."""
    for name, value in pairs:
        _check_text([where, name], name)
        _check_text([where, name], value)


def check_json(document: Any) -> None:
    """Every key, string and number of a parsed JSON body (iteratively: nesting depth is the client's)."""
    stack: list[tuple[list[str | int], Any]] = [(["body"], document)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            _check_text(loc, value)
        elif isinstance(value, float) and not (value == value and abs(value) != float("inf")):
            raise refusal(loc, "number is out of range (not a finite double)", None)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text([*loc, key], key)
                stack.append(([*loc, key], item))
        elif isinstance(value, list):
            stack.extend(([*loc, index], item) for index, item in enumerate(value))


class _BodyInspector:
    """Watches body chunks for suspicious bytes; parses the body again only if it saw some."""

    def __init__(self, kind: str, headers: Headers) -> None:
        self.kind = kind
        self.headers = headers
        self.pattern = _SUSPECT_JSON if kind == "json" else _SUSPECT_FORM
        self.chunks: list[bytes] = []  # the same objects the app receives: references, not copies
        self.suspect = False
        self.tail = b""

    def feed(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        if not self.suspect and chunk:
            window = self.tail + chunk[:_WINDOW]
            self.suspect = self.pattern.search(chunk) is not None or self.pattern.search(window) is not None
            self.tail = chunk[-_WINDOW:]

    async def finish(self) -> None:
        if not self.suspect:
            return
        body = b"".join(self.chunks)
        if self.kind == "json":
            try:
                document = json.loads(body)
            except (ValueError, RecursionError):
                return  # FastAPI answers malformed JSON with its own 422 (or 400)
            check_json(document)
        elif self.kind == "urlencoded":
            check_pairs("body", parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        else:
            await self._check_multipart(body)

    async def _check_multipart(self, body: bytes) -> None:
        async def stream() -> Any:
            yield body

        try:
            form = await MultiPartParser(self.headers, stream()).parse()
        except MultiPartException:
            return  # malformed: FastAPI's own parse of the same body answers it
        try:
            # Text fields only: an uploaded file may hold any bytes.
            check_pairs("body", [(name, value) for name, value in form.multi_items() if isinstance(value, str)])
        finally:
            await form.close()


def _body_kind(content_type: bytes) -> str | None:
    media = content_type.split(b";", 1)[0].strip().lower()
    if not media:
        return None
    if media == b"application/json" or media.endswith(b"+json"):
        return "json"
    if media == b"application/x-www-form-urlencoded":
        return "urlencoded"
    if media == b"multipart/form-data":
        return "multipart"
    return None


async def answer(send: Send, status: int, detail: Any) -> None:
    body = orjson.dumps({"detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int = MiB, max_header_bytes: int = 32 * 1024) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # On every request, so kept to one bare loop; the rest waits until the app reads a body.
        size = 0
        for name, value in scope["headers"]:
            size += len(name) + len(value)
        if size > self.max_header_bytes:
            await answer(send, 431, f"request headers larger than {self.max_header_bytes} bytes")
            return
        path: str = scope["path"]
        query: bytes = scope["query_string"]
        if "\x00" in path or b"%00" in query or b"\x00" in query:
            try:
                _check_text(["path"], path)
                check_pairs("query", parse_qsl(query.decode("latin-1"), keep_blank_values=True))
            except InputRefused as refused:
                await answer(send, refused.status_code, refused.detail)
                return
        try:
            await self.app(scope, _GuardedReceive(scope, receive, self.max_body_bytes), send)
        except InputRefused as refused:
            # Read outside FastAPI's handlers (another middleware, a raw route), which answer it themselves.
            # Had the response started, this second start fails and the server aborts the connection.
            await answer(send, refused.status_code, refused.detail)


class _GuardedReceive:
    """`receive` with the body limit and the body inspection; set up on the first read only."""

    __slots__ = ("default_limit", "inspector", "limit", "receive", "received", "scope")

    def __init__(self, scope: Scope, receive: Receive, default_limit: int) -> None:
        self.scope = scope
        self.receive = receive
        self.default_limit = default_limit
        self.limit = -1
        self.received = 0
        self.inspector: _BodyInspector | None = None

    def _first_read(self) -> None:
        # Routing has run by now: the endpoint's own limit is known.
        self.limit = getattr(self.scope.get("endpoint"), BODY_LIMIT_ATTRIBUTE, self.default_limit)
        headers = Headers(scope=self.scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            raise _too_large(self.limit)  # before a byte of the body is read
        kind = _body_kind(headers.get("content-type", "").encode("latin-1"))
        if kind is not None:
            self.inspector = _BodyInspector(kind, headers)

    async def __call__(self) -> Message:
        if self.limit < 0:
            self._first_read()
        message = await self.receive()
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            self.received += len(chunk)
            if self.received > self.limit:
                raise _too_large(self.limit)
            if self.inspector is not None:
                self.inspector.feed(chunk)
                if not message.get("more_body", False):
                    await self.inspector.finish()
        return message


def _too_large(limit: int) -> InputRefused:
    return InputRefused(413, detail=f"request body larger than {limit} bytes")
