"""Stop-loss, take-profit and liquidation levels, indexed by price.

A tick only touches the levels it crossed: levels live in two sorted lists, one
for levels that fire when the price falls to them (long SL, long liquidation,
short TP) and one for levels that fire when it rises to them (long TP, short SL,
short liquidation). Finding the crossed ones is a bisection, not a scan.

The lists are plain Python lists kept sorted with `bisect`: at a match's size (at
most three levels per player, a few thousand in an arena) an insertion's memmove
costs less than a balanced structure's bookkeeping. Reindexing a position touches
only the levels that changed (a partial close usually changes none).

Each entry starts with the level as a float, then the exact Decimal level: float()
never reverses the order of two Decimals, so (float, Decimal) sorts exactly as the
Decimal alone, but most comparisons in a bisection stop at the cheap float.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

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


# entry: (float(level), level, player, trigger)
_Entry = tuple[float, Decimal, str, int]


def _entry(level: Decimal, player: str, trigger: int) -> _Entry:
    return (float(level), level, player, trigger)


class TriggerBook:
    def __init__(self) -> None:
        self._falling: list[_Entry] = []  # fire when price <= level; sorted
        self._rising: list[_Entry] = []  # fire when price >= level; sorted
        self._entries: dict[str, list[tuple[list[_Entry], _Entry]]] = {}

    def __len__(self) -> int:
        return len(self._falling) + len(self._rising)

    def index(self, pos: Position) -> None:
        """(Re)index every level of a position, replacing what it had."""
        entries: list[tuple[list[_Entry], _Entry]] = []
        long = pos.side == LONG
        if pos.liquidation > 0:
            entries.append(
                (self._falling if long else self._rising, _entry(pos.liquidation, pos.player, 0))
            )
        if pos.stop_loss is not None:
            entries.append(
                (self._falling if long else self._rising, _entry(pos.stop_loss, pos.player, 1))
            )
        if pos.take_profit is not None:
            entries.append(
                (self._rising if long else self._falling, _entry(pos.take_profit, pos.player, 2))
            )
        old = self._entries.pop(pos.player, ())
        for book, entry in old:
            for b, e in entries:
                if b is book and e == entry:
                    break
            else:
                _discard(book, entry)
        for book, entry in entries:
            for b, same in old:
                if b is book and same == entry:
                    if same[1] is not entry[1]:  # equal level, maybe written differently
                        book[bisect_left(book, same)] = entry  # keep the new one
                    break
            else:
                insort(book, entry)
        if entries:
            self._entries[pos.player] = entries

    def remove(self, player: str) -> None:
        for book, entry in self._entries.pop(player, ()):
            _discard(book, entry)

    def crossed(self, prev: Decimal, price: Decimal) -> list[Fired]:
        """Levels crossed by a move to `price`, one per position, in firing order.

        Per position, the level nearest the previous price fires (it is the one
        the price reached first); across positions the same order applies, then
        liquidation before stop-loss before take-profit, then player id.
        """
        hits: list[_Entry] = []
        falling, rising = self._falling, self._rising
        if falling and falling[-1][1] >= price:
            hits.extend(falling[bisect_left(falling, (float(price), price)) :])
        if rising and rising[0][1] <= price:
            hits.extend(rising[: bisect_right(rising, (float(price), price, "\U0010ffff", 9))])
        if not hits:
            return []
        hits.sort(key=lambda e: (abs(e[1] - prev), e[3], e[2]))
        seen: set[str] = set()
        fired: list[Fired] = []
        for _, level, player, trig in hits:
            if player not in seen:
                seen.add(player)
                fired.append(Fired(player, Trigger(trig), level))
        return fired


def _discard(book: list[_Entry], entry: _Entry) -> None:
    i = bisect_left(book, entry)
    if i == len(book) or book[i] != entry:
        raise ValueError(f"{entry} is not in the trigger book")
    del book[i]
