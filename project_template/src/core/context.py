"""The request context any layer may read: the conversation ID of the running request.

The conversation middleware sets it for each request; the HTTP client sends it on
outgoing calls; structlog adds it to every log line as `conversation_id`.
"""

from __future__ import annotations

import os
import random
from contextvars import ContextVar
from typing import Any

import structlog

HEADER_NAME = "x-conversation-id"
COOKIE_NAME = "conversation_id"
CONTEXT_KEY = "conversation_id"

# The very variable structlog's `merge_contextvars` reads for `conversation_id`: setting it
# directly costs one `ContextVar.set`, not `bind_contextvars`' generic dance per request.
_probe = structlog.contextvars.bind_contextvars(**{CONTEXT_KEY: None})
CONVERSATION_ID: ContextVar[Any] = _probe[CONTEXT_KEY].var
structlog.contextvars.reset_contextvars(**_probe)

# IDs correlate log lines; they are not secrets. A private generator seeded from os.urandom
# saves the system call `uuid.uuid4()` makes per request and ignores `random.seed()` calls
# elsewhere; reseeding after fork keeps pre-forked workers from repeating each other's IDs.
_rng = random.Random()  # noqa: S311 - not used for security
os.register_at_fork(after_in_child=_rng.seed)
_bits = _rng.getrandbits
_VERSION_MASK = ~((0xF << 76) | (0x3 << 62))
_VERSION_BITS = (0x4 << 76) | (0x2 << 62)  # UUID version 4, RFC 4122 variant


def new_conversation_id() -> str:
    """A random UUID4 string."""
    h = f"{_bits(128) & _VERSION_MASK | _VERSION_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def current_conversation_id() -> str | None:
    """The ID bound for the running request (or a task it started), if any."""
    value = CONVERSATION_ID.get(None)
    return value if isinstance(value, str) else None
