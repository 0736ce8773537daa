"""One test per game rule, with the expected numbers worked out by hand.

Defaults (modes.toml): bankroll 10,000 USDT, taker fee 0.04 %, maintenance
margin 0.5 %, cooldown 3 s, lot step 1e-8, price step 0.01. Most tests set the
official-price delay to 0 so that a fed price is official at once; the delay
itself is tested with Peek.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from matchserver.engine.codes import Code
from matchserver.engine.events import Ack, Event
from matchserver.engine.match import Match, replay_entries
from tradearena.contracts.phases import GamePhase
from tradearena.modes import Rules, default_catalogue

BLITZ_MS = 180_000


def make_rules(**over: Any) -> Rules:
    return default_catalogue().mode("standard").rules.with_overrides(**over)


class Game:
    """A live match driven by hand: prices, actions and time are explicit."""

    def __init__(self, players: tuple[str, ...] = ("alice", "bob"), **over: Any) -> None:
        over.setdefault("price_delay_ms", 0)
        self.m = Match("m-1", "standard", make_rules(**over), players, BLITZ_MS, 0)
        self.events: list[Event] = []
        for p in players:
            self.events += self.m.connect(p, 0)[1]

    def tick(self, price: str, at: int) -> list[Event]:
        out = self.m.feed(D(price), at) + self.m.advance(at)
        self.events += out
        return out

    def start(self, price: str = "100000", at: int = 0) -> None:
        self.tick(price, at)
        self.events += self.m.start(at)

    def act(self, player: str, at: int, **action: Any) -> Ack:
        action.setdefault("client_order_id", f"{player}-{at}-{len(self.m.log)}")
        ack, out = self.m.submit(player, action, at)
        self.events += out
        return ack

    def open(self, player: str, at: int, side: str, margin: str, leverage: int, **kw: Any) -> Ack:
        return self.act(player, at, type="open", side=side, margin=margin, leverage=leverage, **kw)

    def cash(self, player: str) -> D:
        return self.m.ledger.balance(f"{player}:cash")

    def fills(self, player: str) -> list[dict[str, Any]]:
        return [f for f in self.m.fills if f["player"] == player]

    def sound(self) -> None:
        assert self.m.reconcile() == []


def test_long_pnl_with_fees() -> None:
    g = Game()
    g.start("100000")
    # margin 1000 x 10 = notional 10,000 -> qty 10,000 / 100,000 = 0.1 BTC
    # open fee 10,000 x 0.0004 = 4;  cash 10,000 - 1,000 - 4 = 8,996
    assert g.open("alice", 0, "long", "1000", 10).ok
    assert g.cash("alice") == D("8996")
    pos = g.m.players["alice"].position
    assert pos is not None
    assert (pos.qty, pos.entry, pos.margin) == (D("0.1"), D("100000"), D("1000"))
    g.tick("102000", 3000)
    # pnl 0.1 x (102,000 - 100,000) = 200;  close fee 0.1 x 102,000 x 0.0004 = 4.08
    # cash 8,996 + 1,000 + 200 - 4.08 = 10,191.92
    assert g.act("alice", 3000, type="close").ok
    assert g.cash("alice") == D("10191.92")
    last = g.fills("alice")[-1]
    assert (last["realized_pnl"], last["fee"], last["reason"]) == ("200", "4.08", "close")
    assert g.m.players["alice"].fees == D("8.08")
    g.sound()


def test_short_pnl_with_fees() -> None:
    g = Game()
    g.start("50000")
    # margin 500 x 20 = 10,000 notional -> qty 0.2; fee 4; cash 10,000 - 504 = 9,496
    assert g.open("alice", 0, "short", "500", 20).ok
    assert g.cash("alice") == D("9496")
    g.tick("49000", 3000)
    # pnl 0.2 x (50,000 - 49,000) = 200; fee 0.2 x 49,000 x 0.0004 = 3.92
    # cash 9,496 + 500 + 200 - 3.92 = 10,192.08
    assert g.act("alice", 3000, type="close").ok
    assert g.cash("alice") == D("10192.08")
    g.sound()


def test_opposite_order_flips_the_position() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "1000", 10).ok  # 0.1 long, cash 8,996
    g.tick("101000", 3000)
    # short 2000 x 10 = 20,000 notional -> qty floor(20,000 / 101,000, 1e-8) = 0.19801980
    # closes the 0.1 long: pnl 0.1 x 1,000 = 100, fee 0.1 x 101,000 x 0.0004 = 4.04
    #   cash 8,996 + 1,000 + 100 - 4.04 = 10,091.96
    # opens the rest short: 0.09801980 BTC, notional 9,899.9998
    #   margin 9,899.9998 / 10 = 989.99998, fee 9,899.9998 x 0.0004 = 3.95999992
    #   cash 10,091.96 - 989.99998 - 3.95999992 = 9,098.00002008
    assert g.open("alice", 3000, "short", "2000", 10).ok
    pos = g.m.players["alice"].position
    assert pos is not None
    assert pos.side == -1
    assert pos.qty == D("0.09801980")
    assert pos.margin == D("989.99998")
    assert g.cash("alice") == D("9098.00002008")
    # liquidation (short) = (entry + margin/qty) / (1 + mmr) = (101,000 + 10,100) / 1.005
    #                     = 110,547.2636.. -> rounded down to the tick: 110,547.26
    assert pos.liquidation == D("110547.26")
    reasons = [f["reason"] for f in g.fills("alice")]
    assert reasons == ["open", "flip", "open"]
    g.sound()


def test_opposite_order_smaller_than_position_reduces_it() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "1000", 10).ok  # 0.1 BTC
    g.tick("100000", 3000)
    # short 250 x 10 = 2,500 notional = 0.025 BTC: reduces the long to 0.075
    assert g.open("alice", 3000, "short", "250", 10).ok
    pos = g.m.players["alice"].position
    assert pos is not None
    assert (pos.side, pos.qty, pos.margin) == (1, D("0.075"), D("750"))
    g.sound()


def test_partial_close_releases_margin_pro_rata() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "1000", 10).ok  # 0.1 BTC, cash 8,996
    g.tick("104000", 3000)
    # close 25 %: qty 0.025, margin released 250, pnl 0.025 x 4,000 = 100,
    # fee 0.025 x 104,000 x 0.0004 = 1.04;  cash 8,996 + 250 + 100 - 1.04 = 9,344.96
    assert g.act("alice", 3000, type="close", fraction="0.25").ok
    assert g.cash("alice") == D("9344.96")
    pos = g.m.players["alice"].position
    assert pos is not None
    assert (pos.qty, pos.margin) == (D("0.075"), D("750"))
    # liquidation unchanged: (100,000 - 750/0.075) / 0.995 = 90,452.26.. -> up to 90,452.27
    assert pos.liquidation == D("90452.27")
    g.sound()


def test_liquidation_price_and_fill_at_the_level() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "1000", 10).ok
    pos = g.m.players["alice"].position
    assert pos is not None
    # long: (entry - margin/qty) / (1 - mmr) = (100,000 - 10,000) / 0.995 = 90,452.2613..
    # rounded up onto the 0.01 grid so it fires no later than the exact level
    assert pos.liquidation == D("90452.27")
    g.tick("90452.28", 1000)
    assert g.m.players["alice"].position is not None
    g.tick("90452.27", 2000)
    assert g.m.players["alice"].position is None
    fill = g.fills("alice")[-1]
    # pnl 0.1 x (90,452.27 - 100,000) = -954.773; fee 0.1 x 90,452.27 x 0.0004 = 3.6180908
    # returned 1,000 - 954.773 - 3.6180908 = 41.6089092;  cash 8,996 + 41.6089092
    assert fill["reason"] == "liquidation"
    assert (fill["price"], fill["realized_pnl"], fill["fee"]) == (
        "90452.27",
        "-954.773",
        "3.6180908",
    )
    assert fill["loss_capped"] is False
    assert g.cash("alice") == D("9037.6089092")
    g.sound()


def test_liquidation_through_a_gap_caps_the_loss_at_the_margin() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "1000", 10).ok  # cash 8,996
    g.tick("80000", 1000)  # gaps far below 90,452.27: fills at 80,000
    fill = g.fills("alice")[-1]
    # raw pnl 0.1 x -20,000 = -2,000 -> capped at -1,000 (the margin); no margin left for a fee
    assert (fill["reason"], fill["price"], fill["realized_pnl"], fill["fee"]) == (
        "liquidation",
        "80000",
        "-1000",
        "0",
    )
    assert fill["loss_capped"] is True
    assert g.cash("alice") == D("8996")
    g.sound()


def test_one_gapping_tick_fires_the_level_nearest_the_previous_price() -> None:
    g = Game(players=("a", "b", "c"))
    g.start("100000")
    # Each: margin 2,000 x 5 = 10,000 notional -> 0.1 BTC; long liquidation
    # (100,000 - 20,000) / 0.995 = 80,402.0100.. -> 80,402.02
    assert g.open("a", 0, "long", "2000", 5, stop_loss="90000").ok
    assert g.open("b", 0, "long", "2000", 5, stop_loss="80000").ok  # SL below liquidation
    assert g.open("c", 0, "short", "2000", 5, take_profit="85000").ok
    assert g.m.players["b"].position.liquidation == D("80402.02")  # type: ignore[union-attr]
    g.tick("79990", 1000)  # one tick from 100,000 straight through every level
    by = {f["player"]: f for f in g.m.fills if f["reason"] != "open"}
    # a: SL 90,000 is nearer to 100,000 than liquidation 80,402.02 -> stop-loss, at the tick price
    #    pnl 0.1 x (79,990 - 100,000) = -2,001 -> capped at -2,000; nothing left for the fee
    assert (by["a"]["reason"], by["a"]["price"], by["a"]["realized_pnl"]) == (
        "stop_loss",
        "79990",
        "-2000",
    )
    # b: liquidation 80,402.02 is nearer than SL 80,000 -> liquidation
    assert by["b"]["reason"] == "liquidation"
    # c: short TP 85,000 crossed; the gap is in c's favour and fills at 79,990:
    #    pnl 0.1 x (100,000 - 79,990) = 2,001; fee 0.1 x 79,990 x 0.0004 = 3.1996
    assert (by["c"]["reason"], by["c"]["realized_pnl"], by["c"]["fee"]) == (
        "take_profit",
        "2001",
        "3.1996",
    )
    # firing order: nearest level to the previous price first (a's 90,000, c's 85,000, b's 80,402.02)
    assert [f["player"] for f in g.m.fills if f["reason"] != "open"] == ["a", "c", "b"]
    g.sound()


def test_stop_loss_through_a_gap_fills_at_the_tick_price() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "2000", 5, stop_loss="90000").ok  # cash 10,000 - 2,004
    g.tick("80400", 1000)  # crosses SL 90,000 and liquidation 80,402.02: SL is nearer
    fill = g.fills("alice")[-1]
    # pnl 0.1 x (80,400 - 100,000) = -1,960; fee 0.1 x 80,400 x 0.0004 = 3.216
    # cash 7,996 + 2,000 - 1,960 - 3.216 = 8,032.784
    assert (fill["reason"], fill["realized_pnl"], fill["fee"]) == ("stop_loss", "-1960", "3.216")
    assert g.cash("alice") == D("8032.784")
    g.sound()


def test_stops_must_sit_on_the_right_side_of_the_price() -> None:
    g = Game()
    g.start("100000")
    bad = g.open("alice", 0, "long", "100", 2, stop_loss="100500")
    assert (bad.ok, bad.code) == (False, Code.INVALID_STOPS)
    assert "below" in bad.message
    bad = g.open("alice", 0, "short", "100", 2, take_profit="99999.005")
    assert (bad.code, bad.message) == (
        Code.INVALID_STOPS,
        "take_profit must be a multiple of the price step 0.01",
    )
    bad = g.open("alice", 0, "short", "100", 2, take_profit="99999.000000001")
    assert bad.code is Code.INVALID_ACTION  # more than 8 decimals is malformed
    assert g.open("alice", 0, "long", "100", 2, stop_loss="99000", take_profit="101000").ok
    g.tick("100000", 500)
    assert g.act("alice", 500, type="set_stops", stop_loss="99500").ok
    pos = g.m.players["alice"].position
    assert pos is not None
    assert (pos.stop_loss, pos.take_profit) == (D("99500"), None)  # set_stops replaces both
    assert g.act("alice", 500, type="set_stops", take_profit="99000").code is Code.INVALID_STOPS


def test_cooldown_locks_the_next_order_for_three_seconds() -> None:
    g = Game()
    g.start("100000")
    ack = g.open("alice", 1000, "long", "100", 2)
    assert ack.ok
    assert ack.data["cooldown_until"] == 4000
    g.tick("100000", 2000)
    locked = g.act("alice", 3999, type="close")
    assert (locked.ok, locked.code) == (False, Code.COOLDOWN)
    assert "1 ms" in locked.message
    # stops are not orders: allowed during the cooldown
    assert g.act("alice", 3999, type="set_stops", stop_loss="90000").ok
    g.tick("100000", 4000)
    assert g.act("alice", 4000, type="close").ok
    assert len(g.fills("alice")) == 2


def test_trade_delay_slows_the_target_and_shield_protects() -> None:
    g = Game(action_bar={"initial_charges": 2})
    g.start("100000")
    assert g.act("alice", 0, type="ability", ability="trade_delay", target="bob").ok
    assert g.m.players["alice"].charges == 1
    delayed = g.open("bob", 1000, "long", "1000", 10)
    # executes 2 s after submission, at the official price then
    assert (delayed.ok, delayed.code, delayed.data["execute_at"]) == (True, Code.DELAYED, 3000)
    assert g.fills("bob") == []
    g.tick("101000", 2000)
    g.tick("101000", 3000)
    assert [(f["price"], f["at"]) for f in g.fills("bob")] == [("101000", 3000)]
    # bob shields himself: immune for 30 s although the delay runs until 20 s
    g.tick("101000", 6000)
    assert g.act("bob", 6000, type="ability", ability="shield").ok
    assert g.act("bob", 6000, type="close").ok
    assert g.fills("bob")[-1]["at"] == 6000  # immediate
    # a shielded target cannot be delayed, and the caster keeps the charge
    refused = g.act("alice", 7000, type="ability", ability="trade_delay", target="leader")
    assert (refused.ok, refused.code) == (False, Code.TARGET_SHIELDED)
    assert g.m.players["alice"].charges == 1
    g.sound()


def test_trade_delay_needs_charges_and_a_real_opponent() -> None:
    g = Game(action_bar={"initial_charges": 1})
    g.start("100000")
    assert g.act("alice", 0, type="ability", ability="trade_delay", target="alice").code is (
        Code.INVALID_TARGET
    )
    assert g.act("alice", 0, type="ability", ability="trade_delay", target="nobody").code is (
        Code.INVALID_TARGET
    )
    assert g.act("alice", 0, type="ability", ability="trade_delay", target="leader").ok
    assert g.act("alice", 1, type="ability", ability="shield").code is Code.NOT_ENOUGH_CHARGES


def test_action_bar_regenerates_and_rewards_profitable_closes() -> None:
    g = Game()
    g.start("100000")
    assert g.m.players["alice"].charges == 0
    for minute in range(1, 5):
        g.tick("100000", minute * 60_000)
    assert g.m.players["alice"].charges == 3  # +1 a minute, capped at 3
    g2 = Game()
    g2.start("100000")
    assert g2.open("alice", 0, "long", "1000", 10).ok
    g2.tick("100100", 3000)
    # pnl 0.1 x 100 = 10 > close fee 4.004: a profitable close earns a charge
    assert g2.act("alice", 3000, type="close").ok
    assert g2.m.players["alice"].charges == 1
    g2.tick("100100", 6000)
    assert g2.open("alice", 6000, "long", "1000", 10).ok
    g2.tick("100000", 9000)
    assert g2.act("alice", 9000, type="close").ok  # a loss: no charge
    assert g2.m.players["alice"].charges == 1


def test_peek_reveals_the_live_price_to_the_peeker_alone() -> None:
    g = Game(price_delay_ms=5000)
    g.tick("100000", 0)
    g.events += g.m.advance(5000)
    assert g.m.official == D("100000")  # official only after the 5 s delay
    g.events += g.m.start(5000)
    g.tick("100000", 30_000)
    early = g.act("alice", 30_000, type="peek")
    # the meter refills 2 points/s from the start: 50 points after 25 s
    assert (early.ok, early.code) == (False, Code.PEEK_NOT_READY)
    assert "50/100" in early.message
    g.tick("100800", 54_000)  # live, becomes official at 59,000
    g.events.clear()
    ack = g.act("alice", 55_000, type="peek")
    assert ack.ok
    assert (ack.data["price"], ack.data["until"]) == ("100800", 60_000)
    assert g.m.official == D("100000")  # everyone else still trades at 100,000
    g.tick("100900", 57_000)
    g.tick("101000", 61_000)  # after the peek ended
    peeks = [e for e in g.events if e.kind == "peek"]
    assert [(e.to, e.data["price"]) for e in peeks] == [("alice", "100800"), ("alice", "100900")]
    ticks = [e.data["price"] for e in g.events if e.kind == "tick"]
    assert ticks == ["100800"]  # official at 59,000; 100,900 is official only at 62,000
    assert g.m.players["alice"].peek.level(61_000) == 12  # refilling again: 6 s x 2


def test_disconnect_grace_then_abandon_closes_at_market_and_freezes_equity() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "1000", 10).ok
    g.events += g.m.disconnect("alice", 1000)
    g.tick("101000", 60_000)
    assert g.m.players["alice"].status() == "disconnected"
    g.tick("102000", 60_500)
    # the grace of 60 s from 1,000 ends at 61,000; timers due at an instant run before
    # inputs at that instant, so the position closes at the price then, 102,000
    g.tick("103000", 61_000)
    assert g.m.players["alice"].status() == "abandoned"
    fill = g.fills("alice")[-1]
    # pnl 0.1 x 2,000 = 200, fee 0.1 x 102,000 x 0.0004 = 4.08
    assert (fill["reason"], fill["price"], fill["realized_pnl"]) == ("abandon", "102000", "200")
    frozen = g.m.equity(g.m.players["alice"])
    assert frozen == D("10191.92")
    g.tick("90000", 62_000)
    assert g.m.equity(g.m.players["alice"]) == frozen
    assert g.open("alice", 62_000, "long", "100", 2).code is Code.PLAYER_ABANDONED
    assert g.m.connect("alice", 62_000)[0].code is Code.PLAYER_ABANDONED
    g.sound()


def test_reconnecting_in_time_keeps_the_player_and_counts_reconnects() -> None:
    g = Game()
    g.start("100000")
    for i in range(3):
        g.m.disconnect("alice", 1000 + i * 2000)
        assert g.m.connect("alice", 2000 + i * 2000)[0].ok
    assert g.m.player_state("alice")["reconnects_left"] == 0
    g.tick("100000", 61_000)  # the earlier grace timers were voided by the reconnects
    assert g.m.players["alice"].status() == "connected"
    g.m.disconnect("alice", 62_000)  # no reconnect left: out at once
    assert g.m.players["alice"].status() == "abandoned"


def test_stale_feed_freezes_trading_and_pauses_triggers() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "1000", 10, stop_loss="99000").ok
    g.events += g.m.advance(2000)
    assert not g.m.frozen  # 2,000 ms without a price is still fresh
    g.events += g.m.advance(2001)
    assert g.m.frozen
    stale = g.open("bob", 2500, "long", "100", 2)
    assert (stale.ok, stale.code) == (False, Code.FEED_STALE)
    g.tick("98000", 5000)  # fresh again; the gap is real: SL fills at 98,000
    assert not g.m.frozen
    assert g.fills("alice")[-1]["reason"] == "stop_loss"
    assert g.fills("alice")[-1]["price"] == "98000"
    assert [e.data["frozen"] for e in g.events if e.kind == "feed"] == [False, True, False]
    g.m.stop(6000, cancelled=False, reason="test")
    # the clock does not stop for a freeze; the frozen time is reported
    assert g.m.result()["frozen_ms"] == 2999


def test_rate_limit_is_a_token_bucket_per_player() -> None:
    g = Game()
    g.start("100000")
    codes = [g.act("alice", 100, type="set_stops").code for _ in range(11)]
    assert codes[:10] == [Code.NO_POSITION] * 10
    assert codes[10] is Code.RATE_LIMITED
    assert g.act("bob", 100, type="set_stops").code is Code.NO_POSITION  # per player
    assert g.act("alice", 200, type="set_stops").code is Code.NO_POSITION  # 1 token per 100 ms
    assert g.act("alice", 200, type="set_stops").code is Code.RATE_LIMITED


def test_repeated_client_order_id_returns_the_first_answer() -> None:
    g = Game()
    g.start("100000")
    first = g.open("alice", 0, "long", "1000", 10, client_order_id="o-1")
    g.tick("100000", 5000)
    again = g.open("alice", 5000, "long", "1000", 10, client_order_id="o-1")
    assert again == first
    assert len(g.fills("alice")) == 1
    assert g.cash("alice") == D("8996")


def test_malformed_actions_get_a_stable_code_and_a_message() -> None:
    g = Game()
    g.start("100000")
    cases: list[dict[str, Any]] = [
        {"type": "open", "side": "up", "margin": "10", "leverage": 2},
        {"type": "open", "side": "long", "margin": "-5", "leverage": 2},
        {"type": "open", "side": "long", "margin": "NaN", "leverage": 2},
        {"type": "teleport"},
        {"type": "close", "fraction": "1.5"},
        {"type": "peek", "extra": 1},
    ]
    for case in cases:
        ack = g.act("alice", 0, **case)
        assert (ack.ok, ack.code) == (False, Code.INVALID_ACTION), case
        assert ack.message
    assert g.m.submit("mallory", {"type": "peek", "client_order_id": "x"}, 0)[0].code is (
        Code.UNKNOWN_PLAYER
    )
    assert g.open("alice", 0, "long", "100", 21).code is Code.INVALID_LEVERAGE
    assert g.open("alice", 0, "long", "0.5", 2).code is Code.INVALID_MARGIN
    # 9,999 x 1 at 100,000 = 0.09999 BTC; fee 3.9996; 9,999 + 3.9996 > 10,000
    assert g.open("alice", 0, "long", "9999", 1).code is Code.INSUFFICIENT_BALANCE
    assert g.act("alice", 0, type="close").code is Code.NO_POSITION


def test_orders_outside_the_live_phase_are_refused() -> None:
    g = Game()
    g.tick("100000", 0)
    assert g.open("alice", 0, "long", "100", 2).code is Code.MATCH_NOT_LIVE
    g.events += g.m.start(0)
    g.events += g.m.stop(1000, cancelled=True, reason="admin")
    assert g.m.phase is GamePhase.CANCELLED
    assert g.open("alice", 1000, "long", "100", 2).code is Code.MATCH_NOT_LIVE


def test_settlement_closes_everything_at_the_final_official_price() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "1000", 10).ok
    assert g.open("bob", 0, "short", "1000", 10).ok
    g.tick("101000", 179_000)
    g.events += g.m.advance(BLITZ_MS)
    assert g.m.phase is GamePhase.FINISHED
    # alice: +100 - 4.04 ; bob: -100 - 4.04 (both paid 4 to open)
    result = g.m.result()
    assert [(s["player"], s["equity"], s["rank"]) for s in result["standings"]] == [
        ("alice", "10091.96", 1),
        ("bob", "9891.96", 2),
    ]
    phases = [e.data["phase"] for e in g.events if e.kind == "phase"]
    assert phases == ["live", "settling", "finished"]
    assert g.events[-1].kind == "match_end"
    assert g.events[-1].data == result
    g.sound()


def test_ties_rank_by_who_got_there_first_then_by_id() -> None:
    g = Game(players=("zed", "amy", "bob"))
    g.start("100000")
    # zed and amy make the same round trip, zed one second earlier; bob does nothing
    for who, at in (("zed", 1000), ("amy", 5000)):
        g.tick("100000", at)
        assert g.open(who, at, "long", "1000", 10).ok
        g.tick("100000", at + 3000)
        assert g.act(who, at + 3000, type="close").ok
    g.m.stop(10_000, cancelled=False, reason="test")
    # bob kept 10,000; zed and amy both paid 8 in fees and tie at 9,992
    assert [s["player"] for s in g.m.result()["standings"]] == ["bob", "zed", "amy"]
    g3 = Game(players=("zed", "amy"))
    g3.start("100000")
    g3.m.stop(1000, cancelled=False, reason="test")
    assert [s["player"] for s in g3.m.result()["standings"]] == ["amy", "zed"]


def test_adding_to_a_position_averages_the_entry() -> None:
    g = Game()
    g.start("100000")
    assert g.open("alice", 0, "long", "1000", 10).ok  # 0.1 @ 100,000
    g.tick("110000", 3000)
    assert g.open("alice", 3000, "long", "1100", 10).ok  # 0.1 @ 110,000
    pos = g.m.players["alice"].position
    assert pos is not None
    # entry (0.1 x 100,000 + 0.1 x 110,000) / 0.2 = 105,000; margin 2,100
    assert (pos.qty, pos.entry, pos.margin) == (D("0.2"), D("105000"), D("2100"))
    # liquidation (105,000 - 2,100 / 0.2) / 0.995 = 94,500 / 0.995 = 94,974.87.. -> 94,974.88
    assert pos.liquidation == D("94974.88")
    g.sound()


def test_replayed_log_gives_the_same_result() -> None:
    g = Game(action_bar={"initial_charges": 2})
    g.start("100000")
    g.open("alice", 0, "long", "1000", 10, stop_loss="95000")
    g.act("bob", 0, type="ability", ability="trade_delay", target="alice")
    g.open("bob", 100, "short", "500", 5)
    g.tick("96000", 3000)
    g.open("alice", 3000, "short", "3000", 10)
    g.tick("94000", 6000)
    g.m.disconnect("bob", 7000)
    g.tick("94000", 80_000)
    g.events += g.m.advance(BLITZ_MS)
    replayed, mismatches = replay_entries(g.m.header(), g.m.log, until=g.m.ended_at)
    assert mismatches == []
    assert replayed.result() == g.m.result()
    assert replayed.ledger.lines == g.m.ledger.lines


def test_a_server_restart_does_not_cost_players_a_reconnect() -> None:
    g = Game()
    g.start("100000")
    for i in range(3):
        g.m.disconnect("alice", 1000 + i * 2000)
        assert g.m.connect("alice", 2000 + i * 2000)[0].ok
    g.events += g.m.restarted(10_000)
    assert g.m.players["alice"].status() == "disconnected"  # not abandoned: no fault of hers
    assert g.m.connect("alice", 11_000)[0].ok
    assert g.m.player_state("alice")["reconnects_left"] == 0
    g.tick("100000", 12_000)
    assert g.m.connect("bob", 12_000)[0].ok
    assert g.m.player_state("bob")["reconnects_left"] == 3
    replayed, mismatches = replay_entries(g.m.header(), g.m.log)
    assert mismatches == []
    assert replayed.player_state("alice")["status"] == "connected"


def test_a_connect_of_a_player_already_connected_writes_nothing() -> None:
    g = Game()
    g.start("100000")
    before = len(g.m.log)
    for at in (1000, 1001, 1002):
        ack, events = g.m.connect("alice", at)
        assert ack.ok and events == []
    assert len(g.m.log) == before
    assert g.m.player_state("alice")["reconnects_left"] == 3


def test_a_flip_whose_other_side_is_dust_is_refused_before_anything_moves() -> None:
    g = Game()
    g.start("1.00")
    assert g.open("alice", 0, "long", "40.0000003", 1).ok  # 40.0000003 units at 1x
    g.tick("0.50", 4000)
    lines = len(g.m.ledger.lines)
    # short 1.00000001 x 20 at 0.50 = 40.0000004 units: the rest (1e-7 units) would
    # need margin 1e-7 x 0.5 / 20 = 2.5e-9, which rounds to 0 USDT
    ack = g.open("alice", 4000, "short", "1.00000001", 20)
    assert (ack.ok, ack.code) == (False, Code.ORDER_TOO_SMALL)
    assert "close the position instead" in ack.message
    assert len(g.m.ledger.lines) == lines
    assert g.m.players["alice"].position is not None
    g.sound()


def test_next_due_names_the_next_scheduled_instant() -> None:
    g = Game(price_delay_ms=5000)
    g.tick("100000", 0)
    assert g.m.next_due() == 5000  # the first official price
    g.events += g.m.advance(5000)
    assert g.m.next_due() == 7001  # the feed goes stale then, unless a price comes
    g.events += g.m.start(5000)
    g.tick("100100", 6000)
    assert g.m.next_due() == 7001
    g.events += g.m.advance(7001)
    assert g.m.next_due() == 11_000  # frozen: the next price to become official
