"""Host-port allocation, Agones-style: every game node offers the same port range.

A port may be in use once per node, so the allocator hands out the least-used
port (round-robin among equals) while some node still has it free; kube-scheduler's NodePorts filter then
places the pod on a node where that host port is free. Pure bookkeeping: the
operator rebuilds it from the live pods when it starts.
"""

from __future__ import annotations

from collections import Counter


class PortsExhaustedError(RuntimeError):
    pass


class PortAllocator:
    def __init__(self, port_min: int, port_max: int) -> None:
        if port_min > port_max:
            raise ValueError("empty port range")
        self.port_min = port_min
        self.port_max = port_max
        self._by_owner: dict[str, int] = {}
        self._used: Counter[int] = Counter()
        self._next = port_min  # round-robin start: spreads ports, fewer collisions

    @property
    def size(self) -> int:
        return self.port_max - self.port_min + 1

    def __len__(self) -> int:
        return len(self._by_owner)

    def __contains__(self, owner: object) -> bool:
        return owner in self._by_owner

    def port_of(self, owner: str) -> int | None:
        return self._by_owner.get(owner)

    def usage(self, port: int) -> int:
        return self._used[port]

    def allocations(self) -> dict[str, int]:
        return dict(self._by_owner)

    def register(self, owner: str, port: int) -> None:
        """Record a port already in use (a live pod seen at start-up); idempotent."""
        if self._by_owner.get(owner) == port:
            return
        self.release(owner)
        self._by_owner[owner] = port
        self._used[port] += 1

    def allocate(self, owner: str, nodes: int, preferred: int | None = None) -> int:
        """A port for `owner` (the same one on repeated calls), usable on one of `nodes`."""
        if owner in self._by_owner:
            return self._by_owner[owner]
        nodes = max(nodes, 1)
        if (
            preferred is not None
            and self.port_min <= preferred <= self.port_max
            and self._used[preferred] < nodes
        ):
            self.register(owner, preferred)
            return preferred
        best: int | None = None
        for offset in range(self.size):  # the least-used port, round-robin among equals
            port = self.port_min + (self._next - self.port_min + offset) % self.size
            used = self._used[port]
            if used < nodes and (best is None or used < self._used[best]):
                best = port
                if used == 0:
                    break
        if best is not None:
            self._next = best + 1 if best < self.port_max else self.port_min
            self.register(owner, best)
            return best
        raise PortsExhaustedError(
            f"all {self.size} host ports in use on all {nodes} node(s) "
            f"({self.port_min}-{self.port_max})"
        )

    def release(self, owner: str) -> int | None:
        port = self._by_owner.pop(owner, None)
        if port is not None:
            self._used[port] -= 1
            if self._used[port] <= 0:
                del self._used[port]
        return port
