"""Stop-loss, take-profit and liquidation levels, indexed by price.

A tick only touches the levels it crossed: levels live in two sorted lists, one
for levels that fire when the price falls to them (long SL, long liquidation,
short TP) and one for levels that fire when it rises to them (long TP, short SL,
short liquidation). Finding the crossed ones is a bisection, not a scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from sortedcontainers import SortedList

from .positions import LONG, Position


class Trigger(IntEnum):
    LIQUIDATION = 0
    STOP_LOSS = 1
    TAKE_PROFIT = 2

    @property
    def reason(self) -> str:
        return ("liquidation", "stop_loss", "take_profit")[self]


@dataclass(frozen=True, slots=True)
class Fired:
    player: str
    trigger: Trigger
    level: Decimal


# entry: (level, player, trigger)
_Entry = tuple[Decimal, str, int]


class TriggerBook:
    def __init__(self) -> None:
        self._falling = SortedList()  # fire when price <= level
        self._rising = SortedList()  # fire when price >= level
        self._entries: dict[str, list[tuple[SortedList, _Entry]]] = {}

    def __len__(self) -> int:
        return len(self._falling) + len(self._rising)

    def index(self, pos: Position) -> None:
        """(Re)index every level of a position, replacing what it had."""
        self.remove(pos.player)
        entries: list[tuple[SortedList, _Entry]] = []
        long = pos.side == LONG
        if pos.liquidation > 0:
            entries.append(
                (self._falling if long else self._rising, (pos.liquidation, pos.player, 0))
            )
        if pos.stop_loss is not None:
            entries.append(
                (self._falling if long else self._rising, (pos.stop_loss, pos.player, 1))
            )
        if pos.take_profit is not None:
            entries.append(
                (self._rising if long else self._falling, (pos.take_profit, pos.player, 2))
            )
        for book, entry in entries:
            book.add(entry)
        if entries:
            self._entries[pos.player] = entries

    def remove(self, player: str) -> None:
        for book, entry in self._entries.pop(player, ()):
            book.remove(entry)

    def crossed(self, prev: Decimal, price: Decimal) -> list[Fired]:
        """Levels crossed by a move to `price`, one per position, in firing order.

        Per position, the level nearest the previous price fires (it is the one
        the price reached first); across positions the same order applies, then
        liquidation before stop-loss before take-profit, then player id.
        """
        hits: list[_Entry] = []
        falling, rising = self._falling, self._rising
        if falling and falling[-1][0] >= price:
            hits.extend(falling.irange((price,), None))
        if rising and rising[0][0] <= price:
            hits.extend(rising.irange(None, (price, "\U0010ffff", 9)))
        if not hits:
            return []
        hits.sort(key=lambda e: (abs(e[0] - prev), e[2], e[1]))
        seen: set[str] = set()
        fired: list[Fired] = []
        for level, player, trig in hits:
            if player not in seen:
                seen.add(player)
                fired.append(Fired(player, Trigger(trig), level))
        return fired
