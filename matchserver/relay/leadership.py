"""Lease decisions (pure: no I/O, time passed in): what a replica believes about its
leadership from the outcome of its lease calls."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Change(enum.Enum):
    NONE = "none"
    ELECTED = "elected"
    DEPOSED = "deposed"


@dataclass
class Leadership:
    """What this replica believes, from the outcome of its lease calls (pure).

    Validity is counted from when the call was *sent*, minus a safety margin,
    so a replica stops considering itself leader before Redis can hand the
    lease to another, even if its renewals silently stop arriving.
    """

    ttl_ms: int
    renew_ms: int
    acquire_ms: int
    leader: bool = False
    valid_until: int = 0

    @property
    def margin_ms(self) -> int:
        return self.renew_ms // 2

    def check_interval_ms(self) -> int:
        return self.renew_ms if self.leader else self.acquire_ms

    def on_result(self, held: bool, sent_at: int) -> Change:
        """After an acquire (SET NX) or renew (token check) call: did we hold the lease?"""
        if held:
            self.valid_until = sent_at + self.ttl_ms - self.margin_ms
            if not self.leader:
                self.leader = True
                return Change.ELECTED
            return Change.NONE
        return self._lose()

    def on_error(self, now: int) -> Change:
        """Redis unreachable: stay leader only while the last grant is surely still valid."""
        if self.leader and now >= self.valid_until:
            return self._lose()
        return Change.NONE

    def lost(self) -> Change:
        """A fenced publish found the lease gone."""
        return self._lose()

    def is_leader(self, now: int) -> bool:
        return self.leader and now < self.valid_until

    def _lose(self) -> Change:
        was, self.leader, self.valid_until = self.leader, False, 0
        return Change.DEPOSED if was else Change.NONE
