"""Pool servers as the Match reconciler sees them: the seam between the pool controller
(`pools` modules: MatchServerPool resources and their pods) and allocation (the Match
reconcile in `runtime`). Pure data; the controller keeps these up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tradearena.contracts.orchestration import MatchSpec, Scheme
from tradearena.orchestration.packing import Candidate


@dataclass(frozen=True, slots=True)
class ServerView:
    """One pool server pod and what its server last reported (Redis state hash)."""

    name: str  # the pod's name, which is also its server id
    namespace: str
    pool: str
    uid: str
    node: str | None
    host_port: int | None
    scheme: Scheme
    pod_ready: bool  # the pod's Ready condition (its /readyz)
    capacity: int
    count: int  # matches it hosts now (its server_matches hash, plus allocations in flight)
    draining: bool = False  # told to go (scale-down, image change) or stopping
    template_hash: str = ""  # the pool template it was built from

    def candidate(self) -> Candidate:
        return Candidate(
            server_id=self.name,
            node=self.node or "",
            capacity=self.capacity,
            count=self.count,
            ready=self.pod_ready and self.host_port is not None and self.node is not None,
            draining=self.draining,
        )


class ServerDirectory(Protocol):
    """What allocation asks of the pool controller."""

    def candidates(self, namespace: str, spec: MatchSpec) -> list[ServerView]:
        """Servers of the pool that serves this match's mode and format (any state; the
        caller filters with `packing`). Empty: no pool serves it (a cold start)."""
        ...

    def server(self, namespace: str, name: str) -> ServerView | None: ...

    def note_allocated(self, namespace: str, name: str, match_id: str) -> None:
        """Count a new allocation at once, before the server's next report."""
        ...

    def note_released(self, namespace: str, name: str, match_id: str) -> None: ...
