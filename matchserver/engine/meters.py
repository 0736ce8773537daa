"""Quantities that refill with time, computed lazily from (level, since, now).

Integer milli-units keep them exact and cheap; none of them needs a timer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """Per-player action rate limit: `per_s` tokens a second, at most `burst` stored."""

    per_s: int
    burst: int
    milli: int = -1  # tokens x 1000; -1 = not started (full)
    since: int = 0

    def take(self, now: int) -> bool:
        cap = self.burst * 1000
        level = cap if self.milli < 0 else min(cap, self.milli + (now - self.since) * self.per_s)
        self.since = now
        if level >= 1000:
            self.milli = level - 1000
            return True
        self.milli = level
        return False


@dataclass(slots=True)
class PeekMeter:
    """0..meter_max points, refilling `refill_per_s` points a second."""

    meter_max: int
    refill_per_s: int
    milli: int = 0
    since: int = 0

    def level(self, now: int) -> int:
        """Whole points available at `now`."""
        return self._milli(now) // 1000

    def _milli(self, now: int) -> int:
        return min(self.meter_max * 1000, self.milli + max(0, now - self.since) * self.refill_per_s)

    def full(self, now: int) -> bool:
        return self._milli(now) >= self.meter_max * 1000

    def drain(self, now: int) -> None:
        self.milli, self.since = 0, now

    def ready_at(self, now: int) -> int:
        missing = self.meter_max * 1000 - self._milli(now)
        return now + max(0, -(-missing // self.refill_per_s))
