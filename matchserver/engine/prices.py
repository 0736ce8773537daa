"""The official-price delay line.

Feed prices enter at the server time they arrived and leave as official prices
`delay_ms` later. The newest entry still inside the line is the live price that
a Peek reveals.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal


class DelayLine:
    def __init__(self, delay_ms: int) -> None:
        self.delay_ms = delay_ms
        self._pending: deque[tuple[int, Decimal]] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def push(self, at: int, price: Decimal) -> None:
        self._pending.append((at, price))

    def next_due(self) -> int | None:
        """When the oldest pending price becomes official."""
        return self._pending[0][0] + self.delay_ms if self._pending else None

    def pop(self) -> tuple[int, Decimal]:
        return self._pending.popleft()

    def live(self) -> Decimal | None:
        """The newest feed price, not yet official."""
        return self._pending[-1][1] if self._pending else None
