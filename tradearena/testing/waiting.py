"""Waiting for a condition that no event announces (a row, a key, a metric)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 20) -> Any:
    """The first truthy value of `check()`, polled until `within` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.05)  # poll interval of the condition
