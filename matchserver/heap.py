"""The cycle collector in a long match: keep its pauses short, and show them.

A match only ever adds records that live as long as it does (log entries, ledger
lines, fills, first answers to order ids). CPython's full collection walks every
tracked object, so in a busy arena its pauses grow past 100 ms, in the middle of
ticks. `freeze` moves everything alive into the permanent generation, which
collections skip; the server calls it once the match is built and after each
snapshot, so a collection only walks what came since. Cyclic garbage frozen along
with them is freed when the process ends, and a process serves one match.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any


def freeze() -> int:
    """Hide every object alive now from future collections; returns how many are hidden."""
    gc.freeze()
    return gc.get_freeze_count()


class PauseWatch:
    """Times every collection and hands (generation, seconds) to `observe`."""

    def __init__(self, observe: Callable[[int, float], None]) -> None:
        self._observe = observe
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._observe(int(info["generation"]), time.perf_counter() - self._started)

    def __enter__(self) -> PauseWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)
