"""The cycle collector in a long match: keep its pauses short, and show them.

A match only ever adds records that live as long as it does (log entries, ledger
lines, fills, first answers to order ids). CPython's full collection walks every
tracked object, so in a busy arena its pauses grow past 100 ms, in the middle of
ticks. `freeze` moves everything alive into the permanent generation, which
collections skip; the server calls it once the match is built and after each
snapshot, so a collection only walks what came since.

Frozen objects are still freed by reference counting; only garbage kept alive by
reference cycles is never collected once frozen. A dedicated server ends with its
match, so that never matters there. A pool server's matches come and go, so the
policy (docs/matchserver.md, "Heap"):
- freeze as a dedicated server does (after start-up, each match built, each
  snapshot): with 100 ten-player matches hosted a full collection of their records
  takes about 70 ms unfrozen and nothing frozen;
- what is frozen by mistake is only the cyclic garbage no automatic collection has
  reached yet at the moment of a freeze (generations 0 and 1: some thousands of
  objects at most); no explicit collection is run
  before freezing, since under uvloop one was seen to delay a wake-up of the loop
  until its next timer;
- a match that leaves leaves no cycle behind (the host drops its hooks, tasks and
  routes), so its records, frozen or not, are freed by reference counting (tested);
- never unfreeze: `gc.unfreeze()` + a full collection + `gc.freeze()` costs about
  130 ms at that size, a pause in every hosted match's ticks.
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
