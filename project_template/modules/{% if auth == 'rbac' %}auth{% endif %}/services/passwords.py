"""Password hashing: argon2id through pwdlib, always off the event loop (0.1-0.3 s per hash)."""

from __future__ import annotations

import asyncio

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# pwdlib's recommended argon2id parameters; raising them later makes `verify_and_update`
# re-hash each user's password at their next login.
hasher = PasswordHash((Argon2Hasher(),))


async def hash_password(password: str) -> str:
    """The argon2id hash of `password`."""
    return await asyncio.to_thread(hasher.hash, password)


async def verify_and_update(password: str, password_hash: str) -> tuple[bool, str | None]:
    """(valid, new hash if the stored one uses outdated parameters)."""
    valid, updated = await asyncio.to_thread(hasher.verify_and_update, password, password_hash)
    return bool(valid), updated


async def burn_verify(password: str) -> None:
    """Spend what a verification costs, so an unknown username is not revealed by a fast answer.

    Verifying is re-hashing with the stored parameters, so hashing with the current
    ones costs the same, from the very first call (no dummy hash to compute first).
    """
    await asyncio.to_thread(hasher.hash, password)
