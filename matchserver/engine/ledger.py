"""Double-entry ledger: every balance change is a transfer between two accounts.

Accounts: `<player>:cash` (free balance), `<player>:margin` (locked in the open
position), and the house accounts `house:bankroll` (funds every bankroll),
`house:pnl` (counterparty of realised PnL) and `house:fees`. All accounts start
at zero, so the sum over all accounts is zero at every instant.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from decimal import Decimal
from typing import Any, NamedTuple

from .money import ZERO, fmt

BANKROLL = "house:bankroll"
HOUSE_PNL = "house:pnl"
FEES = "house:fees"


def cash(player: str) -> str:
    return f"{player}:cash"


def margin(player: str) -> str:
    return f"{player}:margin"


class LedgerLine(NamedTuple):
    """Immutable; a tuple because a busy match writes a few of these per fill."""

    seq: int
    at: int
    debit: str  # account that gives
    credit: str  # account that receives
    amount: Decimal
    kind: str  # funding | margin_lock | margin_release | fee | pnl
    player: str
    ref: str  # what caused it: client_order_id, trigger name, "settlement"...

    def to_wire(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "debit": self.debit,
            "credit": self.credit,
            "amount": fmt(self.amount),
            "kind": self.kind,
            "player": self.player,
            "ref": self.ref,
        }


class Ledger:
    def __init__(self) -> None:
        self.lines: list[LedgerLine] = []
        self._balances: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)

    def transfer(
        self, at: int, debit: str, credit: str, amount: Decimal, kind: str, player: str, ref: str
    ) -> None:
        if amount == 0:
            return
        if amount < 0:
            debit, credit, amount = credit, debit, -amount
        lines = self.lines
        lines.append(LedgerLine(len(lines) + 1, at, debit, credit, amount, kind, player, ref))
        balances = self._balances
        balances[debit] -= amount
        balances[credit] += amount

    @classmethod
    def from_lines(cls, lines: list[LedgerLine]) -> Ledger:
        ledger = cls()
        for line in lines:
            ledger.lines.append(line)
            ledger._balances[line.debit] -= line.amount
            ledger._balances[line.credit] += line.amount
        return ledger

    def balance(self, account: str) -> Decimal:
        return self._balances.get(account, ZERO)

    def recompute(self) -> dict[str, Decimal]:
        """Balances summed afresh from the lines, to check the running totals against."""
        totals: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)
        for line in self.lines:
            totals[line.debit] -= line.amount
            totals[line.credit] += line.amount
        return dict(totals)

    def digest(self) -> str:
        h = hashlib.sha256()
        for line in self.lines:
            h.update(
                f"{line.seq}|{line.at}|{line.debit}|{line.credit}|{fmt(line.amount)}|"
                f"{line.kind}|{line.player}|{line.ref}\n".encode()
            )
        return h.hexdigest()
