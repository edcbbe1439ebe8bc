"""Password hashing with Argon2id (argon2-cffi); the cost comes from settings.

Each hash holds ``memory_kib`` of memory (64 MiB by default) for its duration: a flood of
log-ins or sign-ups hashed all at once would exhaust the server's memory. ``hash_bounded`` and
``verify_bounded`` let at most ``at_once`` run in this process; the next ones wait up to
``wait_s`` for a turn, then are refused with ``Unavailable("busy")``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from giftwave.errors import Code, Unavailable

# A fixed hash to verify against when the user does not exist, so a login for an unknown
# e-mail costs the same time as one with a wrong password (no user enumeration by timing).
_DUMMY_PASSWORD = "giftwave-no-such-user"
BUSY_RETRY_AFTER_S: Final = 1.0


@functools.cache
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    """The unknown user's hash for these costs, made once per process and then reused.

    A hash costs what a log-in costs (64 MiB, tens of milliseconds or more): made in every
    ``Passwords`` it slowed every app start, and a process that starts several apps (the
    tests start hundreds) paid it each time. Its costs are the ones verified against, so a log-in
    for an unknown e-mail still costs what a wrong password does."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1).hash(
        _DUMMY_PASSWORD
    )


class Passwords:
    def __init__(
        self, *, time_cost: int, memory_kib: int, at_once: int = 4, wait_s: float = 2.0
    ) -> None:
        assert at_once >= 1
        assert wait_s >= 0
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._dummy_hash = _dummy_hash(time_cost, memory_kib)
        self._slots = asyncio.Semaphore(at_once)
        self._wait_s = wait_s

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A turn to hash, waited for at most ``wait_s``; ``Unavailable("busy")`` after that."""
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise Unavailable(
                Code.BUSY,
                "too many log-ins and sign-ups at once; try again in a moment",
                retry_after_s=BUSY_RETRY_AFTER_S,
            ) from None
        try:
            yield
        finally:
            self._slots.release()

    async def hash_bounded(self, password: str) -> str:
        async with self.slot():
            return await asyncio.to_thread(self.hash, password)

    async def verify_bounded(self, password_hash: str | None, password: str) -> bool:
        async with self.slot():
            return await asyncio.to_thread(self.verify, password_hash, password)
