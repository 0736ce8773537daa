"""A whole match over real BTCUSDT prices of 2025-10-10, the crash day (about 122k to 102k
at the 21:20 UTC low), with scripted players whose fates are known in advance.

The day's 1-minute klines become a price path (open, low/high, close per minute)
replayed 60 times faster: one market minute is one second of match time, so the
5 s official-price delay is five market minutes and the whole day is a 24-minute
match. Everything else comes from the catalogue's `standard` rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal as D
from typing import Any

import pytest

from matchserver.engine.codes import Code
from matchserver.engine.events import Ack
from matchserver.engine.log import MatchRecord
from matchserver.engine.match import Match, replay_entries
from matchserver.engine.money import fmt, money
from matchserver.engine.positions import LONG, liquidation_price
from matchserver.engine.replay import verify
from matchserver.feed.archive import PricePoint, kline_path, read_klines
from tradearena.contracts.phases import GamePhase
from tradearena.modes import default_catalogue
from tradearena.testing.paths import KLINES_DIR

CRASH_DAY = KLINES_DIR / "BTCUSDT-1m-2025-10-10.csv"
SPEED = 60
DAY_MS = 86_400_000 // SPEED  # the match lasts one market day
PLAYERS = ("long_sl", "long_naked", "short_tp", "flipper", "tactician", "ghost")
RULES = default_catalogue().mode("standard").rules


def T(hhmm: str) -> int:
    """Match time of a market time of day (UTC) on the crash day."""
    hours, minutes = hhmm.split(":")
    return (int(hours) * 60 + int(minutes)) * 60_000 // SPEED


def load_path() -> list[PricePoint]:
    assert CRASH_DAY.is_file(), f"missing test data {CRASH_DAY}"
    return list(kline_path(read_klines(CRASH_DAY), speed=SPEED))


def official_at(path: list[PricePoint], at: int) -> D:
    """The official price at match time `at`: the newest feed price at least 5 s old."""
    due = [p.price for p in path if p.at + RULES.price_delay_ms <= at]
    assert due, f"no official price yet at {at}"
    return due[-1]


Script = Callable[["Run"], None]


@dataclass
class Run:
    """Feeds the path into a match and runs the scripted players at their times."""

    path: list[PricePoint]
    m: Match = field(init=False)
    acks: dict[str, Ack] = field(default_factory=dict)  # label -> answer
    fed: D = D(0)
    cash_seen: dict[str, list[tuple[int, D]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.m = Match("crash-day", "standard", RULES, PLAYERS, DAY_MS, 0)

    @property
    def now(self) -> int:
        return self.m.now

    def act(self, label: str, player: str, action: dict[str, Any]) -> Ack:
        ack, _ = self.m.submit(player, {**action, "client_order_id": label}, self.now)
        self.acks[label] = ack
        return ack

    def check(self) -> None:
        assert self.m.reconcile() == []
        for pid in PLAYERS:
            cash = self.m.ledger.balance(f"{pid}:cash")
            assert cash >= 0
            seen = self.cash_seen.setdefault(pid, [])
            if not seen or seen[-1][1] != cash:
                seen.append((self.now, cash))

    def play(self, schedule: list[tuple[int, Script]]) -> None:
        todo = sorted(schedule, key=lambda item: item[0])
        for pid in PLAYERS:
            self.m.connect(pid, 0)
        started = False
        for point in self.path:
            while todo and todo[0][0] <= point.at:
                at, script = todo.pop(0)
                self.m.advance(at)
                script(self)
                self.check()
            self.m.feed(point.price, point.at)
            self.fed = point.price
            if not started:
                self.m.start(point.at)
                started = True
            self.check()
        assert not todo, "a scripted step falls after the last price"
        self.m.advance(DAY_MS)
        self.check()


def _ok(ack: Ack) -> None:
    assert ack.ok, ack


def order(label: str, player: str, **action: Any) -> Script:
    """Submit an action; its answer is kept under `label` (also its client_order_id)."""

    def script(run: Run) -> None:
        run.act(label, player, action)

    return script


def must(label: str, player: str, **action: Any) -> Script:
    """Submit an action that has to be accepted."""

    def script(run: Run) -> None:
        _ok(run.act(label, player, action))

    return script


def long_with_stop(run: Run) -> None:
    """A 20x long just before the slide, its stop-loss 1 % below the price."""
    assert run.m.official is not None
    stop = str(run.m.official * D("0.99")).split(".")[0]
    _ok(
        run.act(
            "long-sl",
            "long_sl",
            {
                "type": "open",
                "side": "long",
                "margin": "1000",
                "leverage": 20,
                "stop_loss": stop,
            },
        )
    )


def flipper_step(n: int) -> Script:
    """Alternate sides; from the second order on, twice the margin, so that it flips."""
    side = "long" if n % 2 == 0 else "short"
    margin = "500" if n == 0 else "1000"
    return order(f"flip-{n}", "flipper", type="open", side=side, margin=margin, leverage=5)


def peek(run: Run) -> None:
    ack = run.act("peek-1", "tactician", {"type": "peek"})
    assert ack.ok, ack
    # the live price, five market minutes ahead of everyone else's
    assert ack.data["price"] == fmt(run.fed)
    assert run.m.official != run.fed


def trade_delay_leader(run: Run) -> None:
    leader = next(p.id for p, _ in run.m.standings() if p.id != "tactician" and not p.abandoned)
    ack = run.act(
        "delay-leader",
        "tactician",
        {
            "type": "ability",
            "ability": "trade_delay",
            "target": "leader",
        },
    )
    assert ack.ok and ack.data["target"] == leader, ack


def disconnect(player: str) -> Script:
    def script(run: Run) -> None:
        run.m.disconnect(player, run.now)

    return script


def connect(label: str, player: str) -> Script:
    def script(run: Run) -> None:
        run.acks[label] = run.m.connect(player, run.now)[0]

    return script


def schedule() -> list[tuple[int, Script]]:
    ability = {"type": "ability"}
    return [
        # the crash: a 20x long with a stop-loss, a 20x long without, a 10x short with TP
        (T("20:45"), long_with_stop),
        (
            T("20:45"),
            must("long-naked", "long_naked", type="open", side="long", margin="2000", leverage=20),
        ),
        (
            T("20:45"),
            must(
                "short-tp",
                "short_tp",
                type="open",
                side="short",
                margin="1000",
                leverage=10,
                take_profit="110000",
            ),
        ),
        # the tactician: shield, trade_delay on the flipper and on the leader, a peek
        (T("02:00"), must("shield-1", "tactician", **ability, ability="shield")),
        (
            T("02:10"),
            order(
                "delay-shielded", "flipper", **ability, ability="trade_delay", target="tactician"
            ),
        ),
        (
            T("03:50"),
            must("delay-flipper", "tactician", **ability, ability="trade_delay", target="flipper"),
        ),
        (T("06:00"), peek),
        (
            T("06:10"),
            must(
                "tact-short",
                "tactician",
                type="open",
                side="short",
                margin="3000",
                leverage=3,
                stop_loss="130000",
            ),
        ),
        (T("12:00"), must("tact-close", "tactician", type="close")),
        (T("21:30"), trade_delay_leader),
        # the ghost: a long, two reconnects, then gone for good
        (
            T("00:30"),
            must("ghost-long", "ghost", type="open", side="long", margin="1000", leverage=5),
        ),
        (T("09:00"), disconnect("ghost")),
        (T("09:30"), connect("ghost-back-1", "ghost")),
        (T("10:00"), disconnect("ghost")),
        (T("10:20"), connect("ghost-back-2", "ghost")),
        (T("16:00"), disconnect("ghost")),
        (T("18:00"), connect("ghost-back-3", "ghost")),
        # the flipper: an order every 90 market minutes from 01:00 to 22:00
        *((T("01:00") + n * T("01:30"), flipper_step(n)) for n in range(15)),
    ]


@dataclass
class Outcome:
    run: Run
    result_json: str


def play_crash_day() -> Outcome:
    run = Run(load_path())
    run.play(schedule())
    return Outcome(run, json.dumps(run.m.result(), sort_keys=True, separators=(",", ":")))


@pytest.fixture(scope="module")
def crash_day() -> Outcome:
    return play_crash_day()


def fills_of(run: Run, player: str) -> list[dict[str, Any]]:
    return [f for f in run.m.fills if f["player"] == player]


def first_official_crossing(
    path: list[PricePoint], after: int, hit: Callable[[D], bool]
) -> tuple[int, D]:
    """When and at what price the official price first satisfies `hit` after `after`."""
    for p in path:
        at = p.at + RULES.price_delay_ms
        if at > after and hit(p.price):
            return at, p.price
    raise AssertionError("the level is never reached")


# ------------------------------------------------------------------ the tests
def test_the_match_runs_to_the_end_sound(crash_day: Outcome) -> None:
    m = crash_day.run.m
    assert m.phase is GamePhase.FINISHED and m.end_reason == "time"
    assert m.ended_at == DAY_MS
    assert m.reconcile() == []
    assert m.frozen_ms == RULES.price_delay_ms  # only the wait for the first official price
    assert m.result()["final_price"] == fmt(official_at(crash_day.run.path, DAY_MS))
    assert all(p.position is None for p in m.players.values())


def test_every_close_takes_at_most_its_margin(crash_day: Outcome) -> None:
    """Per close: margin released + realised PnL - fee >= 0, from the ledger lines."""
    m = crash_day.run.m
    closes: list[tuple[str, D, D, D]] = []
    for line in m.ledger.lines:
        if line.kind == "margin_release":
            closes.append((line.player, line.amount, D(0), D(0)))
        elif line.kind == "pnl" and closes and closes[-1][0] == line.player:
            player, released, _, fee = closes[-1]
            sign = 1 if line.credit == f"{player}:cash" else -1
            closes[-1] = (player, released, sign * line.amount, fee)
        elif line.kind == "fee" and m.ledger.lines[line.seq - 2].kind in ("margin_release", "pnl"):
            player, released, pnl, _ = closes[-1]
            closes[-1] = (player, released, pnl, line.amount)
    close_fills = [f for f in m.fills if f["reason"] != "open"]
    assert len(closes) == len(close_fills) >= 20
    for (player, released, pnl, fee), fill in zip(closes, close_fills, strict=True):
        assert player == fill["player"]
        assert (pnl, fee) == (D(fill["realized_pnl"]), D(fill["fee"]))
        assert released + pnl - fee >= 0, fill


def test_unprotected_20x_long_is_liquidated_in_the_crash_at_the_tick_price(
    crash_day: Outcome,
) -> None:
    run = crash_day.run
    opened, liquidated = fills_of(run, "long_naked")
    assert opened["reason"] == "open" and opened["at"] == T("20:45")
    entry, qty = D(opened["price"]), D(opened["qty"])
    assert entry == official_at(run.path, T("20:45"))
    assert qty == (D(2000) * 20 / entry).quantize(D("0.00000001"), rounding="ROUND_DOWN")
    level = liquidation_price(
        LONG, entry, qty, D(2000), RULES.maintenance_margin_rate, RULES.price_step
    )
    at, price = first_official_crossing(run.path, T("20:45"), lambda p: p <= level)
    assert liquidated["reason"] == "liquidation"
    assert (liquidated["at"], D(liquidated["price"])) == (at, price)
    assert T("21:00") < at < T("21:30")  # in the crash, not before it
    raw_loss = qty * (entry - price)
    pnl = D(liquidated["realized_pnl"])
    assert -pnl == min(money(raw_loss), D(2000))
    assert -pnl + D(liquidated["fee"]) <= D(2000)  # never more than the margin
    if raw_loss >= 2000:
        assert liquidated["loss_capped"]
    # whatever happened, the rest of the bankroll is untouched
    open_fee = D(opened["fee"])
    final_cash = run.m.ledger.balance("long_naked:cash")
    assert final_cash >= D(10_000) - D(2000) - open_fee
    assert run.m.players["long_naked"].position is None


def test_20x_long_with_a_stop_loss_leaves_before_liquidation(crash_day: Outcome) -> None:
    run = crash_day.run
    opened, stopped = fills_of(run, "long_sl")
    entry = D(opened["price"])
    stop = D(str(entry * D("0.99")).split(".")[0])
    at, price = first_official_crossing(run.path, T("20:45"), lambda p: p <= stop)
    assert stopped["reason"] == "stop_loss"
    assert (stopped["at"], D(stopped["price"])) == (at, price)
    assert price <= stop  # gaps are real: filled at the tick, maybe below the level
    assert not stopped["loss_capped"]
    assert -D(stopped["realized_pnl"]) < D(1000)
    # it got out well before the naked long was liquidated
    assert at < fills_of(run, "long_naked")[1]["at"]


def test_short_with_take_profit_profits_from_the_crash(crash_day: Outcome) -> None:
    run = crash_day.run
    opened, took = fills_of(run, "short_tp")
    assert took["reason"] == "take_profit"
    at, price = first_official_crossing(run.path, T("20:45"), lambda p: p <= D(110_000))
    assert (took["at"], D(took["price"])) == (at, price)
    assert D(took["realized_pnl"]) == money(D(opened["qty"]) * (D(opened["price"]) - price))
    assert D(took["realized_pnl"]) > 0
    standings = run.m.result()["standings"]
    assert standings[0]["player"] == "short_tp"
    assert D(standings[0]["equity"]) > D(10_000)


def test_flipper_flips_and_is_slowed_by_trade_delay(crash_day: Outcome) -> None:
    run = crash_day.run
    fills = fills_of(run, "flipper")
    assert [f["reason"] for f in fills[:3]] == ["open", "flip", "open"]
    assert sum(f["reason"] == "flip" for f in fills) == 14
    assert fills[-1]["reason"] == "settlement" and fills[-1]["at"] == DAY_MS
    assert run.acks["delay-shielded"].code is Code.TARGET_SHIELDED
    # the flip ordered at 04:00 came during the tactician's trade_delay on the flipper
    delayed = run.acks["flip-2"]
    assert delayed.code is Code.DELAYED
    execute_at = delayed.data["execute_at"]
    assert execute_at == T("04:00") + RULES.trade_delay.delay_ms
    executed = [f for f in fills if f["ref"] == "flip-2"]
    assert [f["reason"] for f in executed] == ["flip", "open"]
    assert all(f["at"] == execute_at for f in executed)
    assert D(executed[0]["price"]) == official_at(run.path, execute_at)
    assert official_at(run.path, execute_at) != official_at(run.path, T("04:00"))
    assert run.m.players["flipper"].trades == 15


def test_tactician_uses_shield_trade_delay_and_peek(crash_day: Outcome) -> None:
    run = crash_day.run
    assert run.acks["shield-1"].data["until"] == T("02:00") + RULES.shield.duration_ms
    assert run.acks["delay-flipper"].data["until"] == T("03:50") + RULES.trade_delay.duration_ms
    assert run.acks["peek-1"].ok and run.acks["delay-leader"].ok
    short, cover = fills_of(run, "tactician")
    assert (short["reason"], cover["reason"]) == ("open", "close")
    assert D(cover["realized_pnl"]) == money(
        D(short["qty"]) * (D(short["price"]) - D(cover["price"]))
    )


def test_ghost_is_abandoned_after_the_grace_and_its_equity_frozen(crash_day: Outcome) -> None:
    run = crash_day.run
    ghost = run.m.players["ghost"]
    grace = RULES.disconnect.grace_ms
    assert ghost.reconnects == 2
    assert ghost.abandoned_at == T("16:00") + grace
    opened, closed = fills_of(run, "ghost")
    assert opened["reason"] == "open"
    assert run.acks["ghost-back-1"].ok and run.acks["ghost-back-2"].ok
    assert closed["reason"] == "abandon" and closed["at"] == T("16:00") + grace
    assert D(closed["price"]) == official_at(run.path, T("16:00") + grace)
    assert run.acks["ghost-back-3"].code is Code.PLAYER_ABANDONED
    # no balance change after the abandonment
    changes = run.cash_seen["ghost"]
    assert changes[-1][0] <= T("16:00") + grace
    standing = next(s for s in run.m.result()["standings"] if s["player"] == "ghost")
    assert standing["status"] == "abandoned"
    assert D(standing["equity"]) == run.m.ledger.balance("ghost:cash") == changes[-1][1]


def test_replay_gives_the_same_result_digest(crash_day: Outcome) -> None:
    m = crash_day.run.m
    replayed, mismatches = replay_entries(m.header(), m.log, until=m.ended_at)
    assert mismatches == []
    digest = hashlib.sha256(crash_day.result_json.encode()).hexdigest()
    again = json.dumps(replayed.result(), sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(again.encode()).hexdigest() == digest
    assert replayed.fills == m.fills
    verification = verify(MatchRecord(m.header(), list(m.log), m.result()))
    assert verification.ok, verification.differences


def test_a_second_independent_run_is_byte_identical(crash_day: Outcome) -> None:
    second = play_crash_day()
    assert second.result_json == crash_day.result_json
    assert second.run.m.fills == crash_day.run.m.fills
    record = MatchRecord(second.run.m.header(), second.run.m.log, second.run.m.result())
    first = MatchRecord(crash_day.run.m.header(), crash_day.run.m.log, crash_day.run.m.result())
    assert list(record.lines()) == list(first.lines())
