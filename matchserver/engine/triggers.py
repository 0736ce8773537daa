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
from decimal import Decimal
from enum import IntEnum
from typing import NamedTuple

from .positions import LONG, Position


class Trigger(IntEnum):
    LIQUIDATION = 0
    STOP_LOSS = 1
    TAKE_PROFIT = 2

    @property
    def reason(self) -> str:
        return ("liquidation", "stop_loss", "take_profit")[self]


class Fired(NamedTuple):
    player: str
    trigger: Trigger
    level: Decimal


# entry: (float(level), level, player, trigger)
_Entry = tuple[float, Decimal, str, int]
_Slot = tuple[list[_Entry], _Entry] | None
_EMPTY: list[_Slot] = [None, None, None]


class TriggerBook:
    def __init__(self) -> None:
        self._falling: list[_Entry] = []  # fire when price <= level; sorted
        self._rising: list[_Entry] = []  # fire when price >= level; sorted
        # player -> its (book, entry) per trigger (liquidation, stop-loss, take-profit)
        self._entries: dict[str, list[_Slot]] = {}

    def __len__(self) -> int:
        return len(self._falling) + len(self._rising)

    def index(self, pos: Position) -> None:
        """(Re)index every level of a position, replacing what it had.

        Per trigger, an unchanged level stays where it is; only a changed one is
        taken out and put back, so set_stops or a partial close costs one or two
        list edits, not six.
        """
        falling, rising = self._falling, self._rising
        long = pos.side == LONG
        levels = (
            pos.liquidation if pos.liquidation > 0 else None,
            pos.stop_loss,
            pos.take_profit,
        )
        books = (falling, falling, rising) if long else (rising, rising, falling)
        player = pos.player
        slots = self._entries.get(player)
        if slots is None:
            slots = self._entries[player] = [None, None, None]
        for trig in (0, 1, 2):
            level, book, slot = levels[trig], books[trig], slots[trig]
            if slot is not None:
                old_book, old = slot
                if level is not None and old_book is book and old[1] == level:
                    if old[1] is not level:  # equal level, maybe written differently
                        entry = (old[0], level, player, trig)
                        book[bisect_left(book, old)] = entry  # keep the new one
                        slots[trig] = (book, entry)
                    continue
                _discard(old_book, old)
                slots[trig] = None
            if level is not None:
                entry = (float(level), level, player, trig)
                insort(book, entry)
                slots[trig] = (book, entry)
        if slots == _EMPTY:
            del self._entries[player]

    def remove(self, player: str) -> None:
        for slot in self._entries.pop(player, ()):
            if slot is not None:
                _discard(*slot)

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
