"""Passwords: the policy (pure) and argon2id hashing off the event loop.

argon2id with OWASP's parameters (t=2, m=19 MiB, p=1) costs ~38 ms of one
core per hash or verify. Run on the event loop it would stall every other
request for that long, so hashing goes to a thread pool (argon2-cffi releases
the GIL while hashing: N threads use N cores). The pool's backlog is bounded:
past it the lobby answers 503 with Retry-After instead of queueing logins
for seconds.
"""

from __future__ import annotations

import asyncio
import os
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lobby.http.problems import ServerBusyError

T = TypeVar("T")

MIN_LENGTH = 10
MAX_LENGTH = 128
COMMON = frozenset(
    {
        "password123",
        "1234567890",
        "qwertyuiop",
        "password1234",
        "iloveyou123",
        "0123456789",
        "1q2w3e4r5t",
        "qwerty12345",
        "letmein1234",
        "administrator",
    }
)


def password_problems(password: str, username: str = "") -> list[str]:
    """Why a new password is refused (empty list: accepted). NIST 800-63B style: length,
    not a known-common password, not the username; no composition rules."""
    pw = unicodedata.normalize("NFKC", password)
    out: list[str] = []
    if len(pw) < MIN_LENGTH:
        out.append(f"at least {MIN_LENGTH} characters")
    if len(pw) > MAX_LENGTH:
        out.append(f"at most {MAX_LENGTH} characters")
    if pw.lower() in COMMON:
        out.append("too common")
    if username and username.lower() in pw.lower():
        out.append("must not contain the username")
    if pw and len(set(pw)) < 3:
        out.append("too few distinct characters")
    return out


class HasherBusyError(ServerBusyError):
    """The hashing backlog is full; retry shortly."""


@dataclass(frozen=True)
class Argon2Params:
    time_cost: int = 2
    memory_kib: int = 19_456
    parallelism: int = 1


class Hasher:
    """argon2id hash/verify in a thread pool with a bounded backlog."""

    def __init__(self, params: Argon2Params, workers: int = 0, max_backlog: int = 256) -> None:
        self.params = params
        self._ph = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self.workers = workers or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="argon2")
        self._max_backlog = max_backlog
        self._inflight = 0
        # Verified when the user does not exist, so that "no such user" costs as much
        # as "wrong password" (no username enumeration by timing).
        self._dummy = self._ph.hash("tradearena-dummy-password")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._inflight >= self._max_backlog:
            raise HasherBusyError
        self._inflight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, fn, *args)
        finally:
            self._inflight -= 1

    async def hash(self, password: str) -> str:
        return await self._run(self._ph.hash, password)

    def _verify_sync(self, encoded: str | None, password: str) -> tuple[bool, bool]:
        try:
            self._ph.verify(encoded or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, False
        if encoded is None:
            return False, False
        return True, self._ph.check_needs_rehash(encoded)

    async def verify(self, encoded: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash). `encoded=None` (no such user) spends the same time
        and never matches."""
        return await self._run(self._verify_sync, encoded, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
