"""Which pool server gets the next match: Agones' Packed strategy, as a pure function.

Partly used servers first (a dense server's free slots before an idle server's, so
idle servers stay idle and can be scaled down), then servers on the fullest nodes
(so whole nodes empty out), then the name for a stable order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    server_id: str
    node: str  # where it runs ("" locally)
    capacity: int
    count: int  # matches it hosts now
    ready: bool = True
    draining: bool = False

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.count)

    @property
    def allocatable(self) -> bool:
        return self.ready and not self.draining and self.free > 0


def node_load(servers: Iterable[Candidate]) -> Counter[str]:
    """Matches hosted per node."""
    load: Counter[str] = Counter()
    for s in servers:
        load[s.node] += s.count
    return load


def packed_order(servers: Sequence[Candidate]) -> list[Candidate]:
    """Every allocatable server, best first."""
    load = node_load(servers)
    usable = [s for s in servers if s.allocatable]
    return sorted(usable, key=lambda s: (s.count == 0, -load[s.node], -s.count, s.server_id))


def choose(servers: Sequence[Candidate]) -> Candidate | None:
    order = packed_order(servers)
    return order[0] if order else None
