"""What the player's screens are served, built from stored rows without I/O: the page
around a rank, a match's final ledger, the rating after each match."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lobby.results.leaderboards import around_offset
from lobby.results.match_view import final_balances, match_detail
from lobby.results.rating_view import rating_history

A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"
AT = datetime(2026, 11, 30, tzinfo=UTC)


@given(rank=st.integers(1, 10_000), limit=st.integers(1, 100))
def test_the_page_around_a_rank_holds_it_as_near_the_middle_as_the_top_allows(
    rank: int, limit: int
) -> None:
    offset = around_offset(rank, limit)
    assert 0 <= offset < rank <= offset + limit
    if offset > 0:
        assert rank - offset - 1 == limit // 2  # entries above it on its page


def test_around_offset_examples() -> None:
    assert [around_offset(r, 20) for r in (1, 10, 11, 12, 40)] == [0, 0, 0, 1, 29]


def line(seq: int, debit: str, credit: str, amount: str, kind: str) -> dict[str, object]:
    return {"seq": seq, "at": AT, "debit": debit, "credit": credit, "amount": Decimal(amount),
            "kind": kind, "user_id": None, "ref": f"r{seq}"}  # fmt: skip


LEDGER = [
    line(1, "house:bankroll", f"{A}:cash", "10000", "funding"),
    line(2, "house:bankroll", f"{B}:cash", "10000", "funding"),
    line(3, f"{A}:cash", f"{A}:margin", "100", "margin_lock"),
    line(4, f"{A}:cash", "house:fees", "0.6", "fee"),
    line(5, "house:pnl", f"{A}:cash", "12.25", "pnl"),
    line(6, f"{A}:margin", f"{A}:cash", "100", "margin_release"),
]


def test_final_balances_apply_every_line_house_first_then_players_by_name() -> None:
    balances = final_balances(LEDGER, {A: "zoe", B: "adam"})
    assert [(b.account, b.username, Decimal(b.balance)) for b in balances] == [
        ("house:bankroll", None, Decimal(-20000)),
        ("house:fees", None, Decimal("0.6")),
        ("house:pnl", None, Decimal("-12.25")),
        (f"{B}:cash", "adam", Decimal(10000)),
        (f"{A}:cash", "zoe", Decimal("10011.65")),
        (f"{A}:margin", "zoe", Decimal(0)),
    ]
    assert sum(Decimal(b.balance) for b in balances) == 0
    assert [b.user_id for b in balances[3:]] == [B, A, A]


def test_match_detail_keeps_decimals_exact_and_fills_in_order() -> None:
    match = {"id": "m1", "mode": "duel", "format": "blitz", "symbol": "BTCUSDT",
             "phase": "finished", "reason": None, "created_at": AT, "started_at": AT,
             "ended_at": AT, "final_price": Decimal("90000.10")}  # fmt: skip
    players = [
        {"user_id": A, "username": "zoe", "status": "finished", "rank": 1,
         "equity": Decimal("10011.65"), "realized_pnl": Decimal("12.25"), "fees": Decimal("0.6"),
         "trades": 2, "rating_delta": 1.5},
        {"user_id": B, "username": "adam", "status": "finished", "rank": 2,
         "equity": Decimal(10000), "realized_pnl": Decimal(0), "fees": Decimal(0), "trades": 0,
         "rating_delta": -1.5},
    ]  # fmt: skip
    fills = [
        {"user_id": A, "username": "zoe", "reason": reason, "side": side, "qty": Decimal("0.011"),
         "price": Decimal(price), "fee": Decimal("0.3"), "realized_pnl": Decimal(pnl),
         "loss_capped": False, "ref": f"f{i}", "at": AT}
        for i, (reason, side, price, pnl) in enumerate(
            [("open", "buy", "90000.10", "0"), ("close", "sell", "91113.74", "12.25")]
        )
    ]  # fmt: skip
    detail = match_detail(match, players, fills, LEDGER)
    assert detail.final_price == "90000.10"
    assert [(f.ref, f.price, f.qty) for f in detail.fills] == [
        ("f0", "90000.10", "0.011"),
        ("f1", "91113.74", "0.011"),
    ]
    assert [p.rating_delta for p in detail.players] == [1.5, -1.5]
    assert [ln.seq for ln in detail.ledger] == [1, 2, 3, 4, 5, 6]
    assert {b.account: b.balance for b in detail.balances}[f"{A}:cash"] == "10011.65"


def test_rating_history_walks_back_from_the_current_rating() -> None:
    newest_first = [
        {"match_id": "m3", "ended_at": AT, "rank": 2, "players": 2, "rating_delta": -0.5},
        {"match_id": "m2", "ended_at": AT, "rank": 1, "players": 4, "rating_delta": 2.0},
        {"match_id": "m1", "ended_at": AT, "rank": 1, "players": 2, "rating_delta": 1.25},
    ]
    points = rating_history(10.0, newest_first)
    assert [(p.match_id, p.rating, p.delta) for p in points] == [
        ("m1", pytest.approx(8.5), 1.25),
        ("m2", pytest.approx(10.5), 2.0),
        ("m3", 10.0, -0.5),
    ]
    assert points[0].rating - points[0].delta == pytest.approx(7.25)  # before the first shown
    assert rating_history(3.0, []) == []
