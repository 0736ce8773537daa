"""Match detail as served by the API, built from the stored rows (pure: no I/O).

The results worker stores a finished match's players (`match_players`), its fills
(`trades`) and its double-entry ledger (`ledger_lines`) as the match server
recorded them. The detail shows them as stored, plus the final ledger: every
account's balance once all lines are applied (`balances`). The sum over all
accounts is zero, as it is at every instant of a match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from lobby.http.schemas import (
    LedgerBalance,
    MatchDetail,
    MatchFill,
    MatchLedgerLine,
    MatchPlayerResult,
)

Row = Mapping[str, Any]

# House accounts first, then players' by name; ledger account names are `<owner>:<kind>`.
_HOUSE = "house"


def dec(value: Any) -> str | None:
    """An exact decimal (NUMERIC) as its string; None stays None."""
    return None if value is None else str(value)


def _owner(account: str) -> str:
    return account.partition(":")[0]


def final_balances(lines: Sequence[Row], usernames: Mapping[str, str]) -> list[LedgerBalance]:
    """Each account's balance after every line (`debit` gives, `credit` receives):
    the house's accounts first, then each player's, by username."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        amount = Decimal(line["amount"])
        totals[line["debit"]] -= amount
        totals[line["credit"]] += amount

    def order(account: str) -> tuple[int, str, str]:
        owner = _owner(account)
        if owner == _HOUSE:
            return (0, "", account)
        return (1, usernames.get(owner, owner), account)

    out = []
    for account in sorted(totals, key=order):
        owner = _owner(account)
        player = owner if owner in usernames else None
        out.append(
            LedgerBalance(
                account=account,
                user_id=player,
                username=usernames[player] if player else None,
                balance=str(totals[account]),
            )
        )
    return out


def match_detail(
    match: Row, players: Sequence[Row], fills: Sequence[Row], ledger: Sequence[Row]
) -> MatchDetail:
    """The detail of one match from its `matches` row, its `match_players` rows (with
    `username`), its `trades` rows (with `username`, in time order) and its
    `ledger_lines` rows (in `seq` order)."""
    usernames = {str(p["user_id"]): str(p["username"]) for p in players}
    return MatchDetail(
        match_id=match["id"],
        mode=match["mode"],
        format=match["format"],
        symbol=match["symbol"],
        phase=match["phase"],
        reason=match["reason"],
        created_at=match["created_at"],
        started_at=match["started_at"],
        ended_at=match["ended_at"],
        final_price=dec(match["final_price"]),
        kind=match.get("kind") or "ranked",
        players=[
            MatchPlayerResult(
                user_id=str(p["user_id"]),
                username=p["username"],
                status=p["status"],
                rank=p["rank"],
                equity=dec(p["equity"]),
                realized_pnl=dec(p["realized_pnl"]),
                fees=dec(p["fees"]),
                trades=p["trades"],
                rating_delta=p["rating_delta"],
            )
            for p in players
        ],
        fills=[
            MatchFill(
                user_id=str(f["user_id"]),
                username=f["username"],
                reason=f["reason"],
                side=f["side"],
                qty=str(f["qty"]),
                price=str(f["price"]),
                fee=str(f["fee"]),
                realized_pnl=str(f["realized_pnl"]),
                loss_capped=f["loss_capped"],
                ref=f["ref"],
                at=f["at"],
            )
            for f in fills
        ],
        ledger=[
            MatchLedgerLine(
                seq=ln["seq"],
                at=ln["at"],
                debit=ln["debit"],
                credit=ln["credit"],
                amount=str(ln["amount"]),
                kind=ln["kind"],
                user_id=None if ln["user_id"] is None else str(ln["user_id"]),
                ref=ln["ref"],
            )
            for ln in ledger
        ],
        balances=final_balances(ledger, usernames),
    )
