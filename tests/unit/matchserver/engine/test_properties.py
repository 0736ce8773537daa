"""Engine invariants under random play: hypothesis drives random action sequences
over random price paths (with gaps big enough to jump past liquidation levels).

After every step the ledger must reconcile, no cash may go negative and no close
may take more than the margin it releases; a repeated client_order_id never
executes twice; replaying the log gives the identical result.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from matchserver.engine.codes import Code
from matchserver.engine.events import Ack, Event
from matchserver.engine.ledger import FEES, HOUSE_PNL, LedgerLine
from matchserver.engine.log import MatchRecord
from matchserver.engine.match import Match, replay_entries
from matchserver.engine.money import money
from matchserver.engine.positions import LONG, Position
from matchserver.engine.replay import verify
from tradearena.contracts.phases import GamePhase
from tradearena.modes import Rules, default_catalogue

PLAYERS = ("p1", "p2", "p3")
DURATION_MS = 90_000
FEED_EVERY_MS = 1_000
START_PRICE = D("100000")
FLOOR_PRICE = D("1000")  # the symbol is BTC: random paths stay in its order of magnitude
TICK = D("0.01")
TRIGGERS = ("liquidation", "stop_loss", "take_profit")
UNRECORDED = (Code.RATE_LIMITED, Code.INVALID_ACTION, Code.UNKNOWN_PLAYER)

SETTINGS = settings(
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _rules(**over: Any) -> Rules:
    return default_catalogue().mode("standard").rules.with_overrides(**over)


RULE_SETS = {
    # the catalogue as shipped: 5 s price delay, 3 s cooldown, charges every minute
    "catalogue": _rules(),
    # everything faster, so abilities, peeks and delayed orders happen within a short match
    "fast": _rules(
        price_delay_ms=0,
        cooldown_ms=500,
        action_bar={"initial_charges": 3, "regen_ms": 5_000},
        peek={"refill_per_s": 50},
        disconnect={"grace_ms": 8_000, "max_reconnects": 1},
    ),
}

# ------------------------------------------------------------------ strategies
player = st.sampled_from(PLAYERS)
dt = st.integers(1, 4_000)
# basis points relative to the official price; None = no level
level_bp = st.none() | st.integers(-100, 2_500)
small_move = st.integers(-80, 80)
gap = st.sampled_from([-5_000, -3_000, -1_500, -800, -500, 500, 800, 1_500, 3_000])

open_step = st.tuples(
    st.just("open"),
    dt,
    player,
    st.sampled_from(["long", "short"]),
    st.sampled_from(["100", "1000", "1", "25", "0.5", "2500", "4000", "9990", "20000"]),
    st.sampled_from([1, 2, 5, 10, 20, 20, 25]),
    level_bp,
    level_bp,
)
move_step = st.tuples(st.just("move"), dt, small_move | gap)
# listed more than once to make them more frequent: trading and prices are the point
steps = st.one_of(
    open_step,
    move_step,
    open_step,
    move_step,
    st.tuples(st.just("close"), dt, player, st.sampled_from(["1", "0.5", "0.25", "0.00000001"])),
    st.tuples(st.just("stops"), dt, player, level_bp, level_bp),
    st.tuples(
        st.just("ability"),
        dt,
        player,
        st.sampled_from(["trade_delay", "trade_delay", "shield"]),
        st.sampled_from([None, "leader", *PLAYERS]),
    ),
    st.tuples(st.just("peek"), dt, player),
    st.tuples(st.just("repeat"), dt, st.integers(0, 1_000), st.booleans()),
    open_step,
    move_step,
    st.tuples(st.just("stall"), st.integers(2_500, 9_000)),
    st.tuples(st.sampled_from(["disconnect", "connect", "connect", "restart"]), dt, player),
)
scripts = st.lists(steps, min_size=20, max_size=80)


# ------------------------------------------------------------------ the driver
@dataclass
class Submitted:
    player: str
    payload: dict[str, Any]
    ack: Ack


@dataclass
class Driver:
    """Runs a script against a live match and checks the invariants after every call."""

    rules: Rules
    m: Match = field(init=False)
    t: int = 0
    price: D = START_PRICE
    next_feed: int = 0
    n: int = 0
    submitted: list[Submitted] = field(default_factory=list)
    ticks: dict[int, D] = field(default_factory=dict)
    checked_lines: int = 0
    checked_fills: int = 0
    abandoned_cash: dict[str, D] = field(default_factory=dict)
    cooldown_until: dict[str, int] = field(default_factory=dict)
    trigger_fills: int = 0
    capped_fills: int = 0

    def __post_init__(self) -> None:
        self.m = Match("prop-1", "standard", self.rules, PLAYERS, DURATION_MS, 0)
        for p in PLAYERS:
            self.m.connect(p, 0)
        self._feed(0)
        self.m.start(0)
        self.check()

    # -- time and prices
    def _call(self, events: list[Event]) -> None:
        for ev in events:
            if ev.kind == "tick":
                self.ticks[ev.data["at"]] = D(ev.data["price"])

    def _feed(self, at: int) -> None:
        before = self._snapshot()
        self._call(self.m.feed(self.price, at))
        self.check(before)

    def wait(self, delta: int, *, feeding: bool = True) -> None:
        target = self.t + delta
        if feeding:
            while self.next_feed <= target:
                self.t = self.next_feed
                self._feed(self.t)
                self.next_feed += FEED_EVERY_MS
        else:
            self.next_feed = target + FEED_EVERY_MS
        before = self._snapshot()
        self.t = target
        self._call(self.m.advance(target))
        self.check(before)

    def move(self, bp: int) -> None:
        moved = (self.price * (1 + D(bp) / 10_000)).quantize(TICK)
        self.price = max(FLOOR_PRICE, moved)
        self._feed(self.t)
        self.next_feed = self.t + FEED_EVERY_MS

    # -- actions
    def level(self, bp: int | None) -> str | None:
        if bp is None:
            return None
        ref = self.m.official or self.price
        return str((ref * (1 + D(bp) / 10_000)).quantize(TICK))

    def submit(self, who: str, payload: dict[str, Any]) -> Ack:
        self.n += 1
        payload = {**payload, "client_order_id": f"{who}-{self.n}"}
        before = self._snapshot()
        free_at = self.cooldown_until.get(who, 0)
        ack, events = self.m.submit(who, payload, self.t)
        self._call(events)
        self.check(before)
        self.submitted.append(Submitted(who, payload, ack))
        if ack.code is Code.OK and payload["type"] in ("open", "close"):
            # it ran now, so the cooldown of the player's previous order fill was over
            assert self.t >= free_at
            assert ack.data["cooldown_until"] == self.t + self.rules.cooldown_ms
        if ack.code is Code.DELAYED:
            assert ack.data["execute_at"] == self.t + self.rules.trade_delay.delay_ms
        return ack

    def repeat(self, index: int, same_payload: bool) -> None:
        """Resubmit an earlier client_order_id: the first answer comes back, nothing runs."""
        if not self.submitted:
            return
        first = self.submitted[index % len(self.submitted)]
        payload = (
            first.payload
            if same_payload
            else {"type": "close", "client_order_id": first.payload["client_order_id"]}
        )
        lines, fills, log = len(self.m.ledger.lines), len(self.m.fills), len(self.m.log)
        ack, events = self.m.submit(first.player, payload, self.t)
        if first.ack.code in UNRECORDED:
            self._call(events)
            self.check()
            return
        assert ack == first.ack
        assert events == []
        assert (len(self.m.ledger.lines), len(self.m.fills), len(self.m.log)) == (
            lines,
            fills,
            log,
        )

    def run(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        if kind == "move":
            self.wait(step[1])
            self.move(step[2])
        elif kind == "stall":
            self.wait(step[1], feeding=False)
        elif kind == "restart":
            self.wait(step[1])
            self._call(self.m.restarted(self.t))
            self.check()
        elif kind == "repeat":
            self.wait(step[1])
            self.repeat(step[2], step[3])
        else:
            self.wait(step[1])
            who = step[2]
            if kind == "open":
                _, _, _, side, margin, leverage, sl_bp, tp_bp = step
                sign = 1 if side == "long" else -1
                order: dict[str, Any] = {
                    "type": "open",
                    "side": side,
                    "margin": margin,
                    "leverage": leverage,
                }
                sl = self.level(None if sl_bp is None else -sign * sl_bp)
                tp = self.level(None if tp_bp is None else sign * tp_bp)
                if sl is not None:
                    order["stop_loss"] = sl
                if tp is not None:
                    order["take_profit"] = tp
                self.submit(who, order)
            elif kind == "close":
                self.submit(who, {"type": "close", "fraction": step[3]})
            elif kind == "stops":
                pos = self.m.players[who].position
                sign = 1 if pos is None or pos.side == 1 else -1
                sl = self.level(None if step[3] is None else -sign * step[3])
                tp = self.level(None if step[4] is None else sign * step[4])
                self.submit(who, {"type": "set_stops", "stop_loss": sl, "take_profit": tp})
            elif kind == "ability":
                payload: dict[str, Any] = {"type": "ability", "ability": step[3]}
                if step[4] is not None:
                    payload["target"] = step[4]
                self.submit(who, payload)
            elif kind == "peek":
                self.submit(who, {"type": "peek"})
            elif kind == "disconnect":
                before = self._snapshot()
                self._call(self.m.disconnect(who, self.t))
                self.check(before)
            elif kind == "connect":
                before = self._snapshot()
                self._call(self.m.connect(who, self.t)[1])
                self.check(before)

    def finish(self) -> None:
        end_at = self.m.end_at
        assert end_at is not None
        if not self.m.phase.over:
            self.wait(max(0, end_at - self.t) + 1)
        assert self.m.phase is GamePhase.FINISHED
        assert all(p.position is None for p in self.m.players.values())
        self.check()

    # -- invariants
    def _snapshot(self) -> dict[str, tuple[int, D, D | None, D | None]]:
        """Each open position's side and levels, to judge the triggers the next call fires."""
        return {
            pid: (
                p.position.side,
                p.position.liquidation,
                p.position.stop_loss,
                p.position.take_profit,
            )
            for pid, p in self.m.players.items()
            if p.position is not None
        }

    def check(self, before: dict[str, tuple[int, D, D | None, D | None]] | None = None) -> None:
        m = self.m
        assert m.reconcile() == []
        for pid, p in m.players.items():
            cash = m.ledger.balance(f"{pid}:cash")
            assert cash >= 0, f"{pid} cash {cash}"
            assert m.ledger.balance(f"{pid}:margin") >= 0
            if p.position is not None:
                assert p.position.margin > 0 and p.position.qty > 0
                if (
                    m.phase is GamePhase.LIVE
                    and m.official is not None
                    and m.official_at is not None
                ):
                    _assert_not_crossed(p.position, m.official)
            if p.abandoned:
                assert p.position is None
                frozen = self.abandoned_cash.setdefault(pid, cash)
                assert cash == frozen, f"{pid} is abandoned but its cash moved"
        self._check_closes(before or {})

    def _check_closes(self, before: dict[str, tuple[int, D, D | None, D | None]]) -> None:
        """Every close in the new ledger lines takes at most the margin it releases,
        and agrees with the fill the engine reported for it."""
        m = self.m
        new_lines = m.ledger.lines[self.checked_lines :]
        new_fills = m.fills[self.checked_fills :]
        self.checked_lines, self.checked_fills = len(m.ledger.lines), len(m.fills)
        closes = _close_groups(new_lines)
        close_fills = [f for f in new_fills if f["reason"] != "open"]
        assert len(closes) == len(close_fills)
        moved: set[str] = set()
        for group, fill in zip(closes, close_fills, strict=True):
            assert group["player"] == fill["player"]
            released, pnl, fee = group["released"], group["pnl"], group["fee"]
            assert released > 0
            assert pnl >= -released, f"loss {-pnl} beyond margin {released}: {fill}"
            assert -pnl + fee <= released, f"loss+fee beyond margin {released}: {fill}"
            assert (D(fill["realized_pnl"]), D(fill["fee"])) == (pnl, fee)
            if fill["loss_capped"]:
                self.capped_fills += 1
                assert pnl + released - fee == 0 or pnl == -released
            if fill["reason"] in TRIGGERS:
                self.trigger_fills += 1
                # fills at the tick price that crossed the level
                assert D(fill["price"]) == self.ticks[fill["at"]]
                if fill["player"] in before and fill["player"] not in moved:
                    _check_level(fill, before[fill["player"]])
            moved.add(fill["player"])
        for fill in new_fills:
            if "-" in fill["ref"]:  # an order (client_order_id), not a trigger or settlement
                self.cooldown_until[fill["player"]] = fill["at"] + self.rules.cooldown_ms
        for fill in new_fills:
            if fill["reason"] == "open":
                qty, price = D(fill["qty"]), D(fill["price"])
                assert D(fill["fee"]) == money(qty * price * self.rules.taker_fee_rate)
                assert qty > 0


def _close_groups(lines: list[LedgerLine]) -> list[dict[str, Any]]:
    """Split ledger lines into closes: margin_release, then its pnl and fee lines."""
    groups: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in lines:
        if line.kind == "margin_release":
            current = {"player": line.player, "released": line.amount, "pnl": D(0), "fee": D(0)}
            groups.append(current)
        elif line.kind in ("margin_lock", "funding"):
            current = None
        elif line.kind == "pnl":
            assert current is not None and current["player"] == line.player, line
            cash = f"{line.player}:cash"
            assert {line.debit, line.credit} == {cash, HOUSE_PNL}
            current["pnl"] += line.amount if line.credit == cash else -line.amount
        elif line.kind == "fee":
            assert line.credit == FEES and line.debit == f"{line.player}:cash"
            if current is not None:
                assert current["player"] == line.player
                current["fee"] += line.amount
        else:
            raise AssertionError(f"unknown ledger line kind {line.kind}")
    return groups


def _assert_not_crossed(pos: Position, price: D) -> None:
    """No position outlives a tick at or beyond one of its levels."""
    if pos.side == LONG:
        assert pos.liquidation < price, (pos, price)
        assert pos.stop_loss is None or pos.stop_loss < price, (pos, price)
        assert pos.take_profit is None or pos.take_profit > price, (pos, price)
    else:
        assert pos.liquidation > price, (pos, price)
        assert pos.stop_loss is None or pos.stop_loss > price, (pos, price)
        assert pos.take_profit is None or pos.take_profit < price, (pos, price)


def _check_level(fill: dict[str, Any], pos: tuple[int, D, D | None, D | None]) -> None:
    side, liquidation, stop_loss, take_profit = pos
    price = D(fill["price"])
    level = {"liquidation": liquidation, "stop_loss": stop_loss, "take_profit": take_profit}[
        fill["reason"]
    ]
    assert level is not None and level > 0
    falls = (side == 1) != (fill["reason"] == "take_profit")
    assert price <= level if falls else price >= level, (fill, pos)


def _assert_replays(m: Match) -> None:
    replayed, mismatches = replay_entries(m.header(), m.log, until=m.now)
    assert mismatches == []
    assert replayed.result() == m.result()
    assert replayed.leaderboard() == m.leaderboard()
    assert replayed.fills == m.fills
    assert replayed.reconcile() == []


def _executions(m: Match) -> dict[str, set[int]]:
    """client_order_id -> the times at which ledger lines carried it."""
    seen: defaultdict[str, set[int]] = defaultdict(set)
    for line in m.ledger.lines:
        if line.kind != "funding" and "-" in line.ref:
            seen[line.ref].add(line.at)
    return seen


# ------------------------------------------------------------------ properties
@SETTINGS
@given(
    rule_set=st.sampled_from(sorted(RULE_SETS)), warmup=st.sampled_from([0, 6_000]), script=scripts
)
def test_random_play_keeps_every_invariant_and_replays_identically(
    rule_set: str, warmup: int, script: list[tuple[Any, ...]]
) -> None:
    """The core safety net: whatever players do and however the price jumps."""
    d = Driver(RULE_SETS[rule_set])
    d.wait(warmup)
    for step in script:
        d.run(step)
    _assert_replays(d.m)  # mid-match, time run on to now
    d.finish()
    _assert_replays(d.m)
    replayed, mismatches = replay_entries(d.m.header(), d.m.log, until=d.m.ended_at)
    assert mismatches == []
    assert replayed.result() == d.m.result()
    # an order id executes at one instant at most (a flip is one execution, two fills)
    for ref, times in _executions(d.m).items():
        assert len(times) == 1, f"{ref} executed at {sorted(times)}"
    reasons = {f["reason"] for f in d.m.fills}
    event(f"fills: {', '.join(sorted(reasons)) or 'none'}")
    event(f"loss capped: {d.capped_fills > 0}")
    codes = sorted({str(s.ack.code) for s in d.submitted})
    event(f"delayed: {'delayed' in codes}")
    opens = sorted({str(s.ack.code) for s in d.submitted if s.payload["type"] == "open"})
    event(f"opens: {opens}")
    event(f"abandoned: {any(p.abandoned for p in d.m.players.values())}")


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule_set=st.sampled_from(sorted(RULE_SETS)),
    side=st.sampled_from(["long", "short"]),
    leverage=st.integers(10, 20),
    margin=st.sampled_from(["100", "1000", "5000"]),
    gap_bp=st.integers(1_000, 6_000),
    sl_bp=st.none() | st.integers(10, 500),
)
def test_a_gap_through_the_liquidation_level_caps_the_loss_at_the_margin(
    rule_set: str, side: str, leverage: int, margin: str, gap_bp: int, sl_bp: int | None
) -> None:
    """At 10x-20x, a 10 %-60 % adverse gap jumps past the liquidation level (and any SL)."""
    d = Driver(RULE_SETS[rule_set])
    d.wait(6_000)
    sign = 1 if side == "long" else -1
    order: dict[str, Any] = {"type": "open", "side": side, "margin": margin, "leverage": leverage}
    if sl_bp is not None:
        order["stop_loss"] = d.level(-sign * sl_bp)
    assert d.submit("p1", order).ok
    cash_after_open = d.m.ledger.balance("p1:cash")
    d.wait(500)
    d.move(-sign * gap_bp)
    d.wait(6_000)
    assert d.m.players["p1"].position is None
    fill = d.m.fills[-1]
    assert fill["player"] == "p1" and fill["reason"] in ("liquidation", "stop_loss")
    assert D(fill["price"]) == d.price  # the tick price, not the level
    assert d.m.ledger.balance("p1:cash") >= cash_after_open
    assert d.m.ledger.balance("p1:cash") <= cash_after_open + D(margin)
    assert d.trigger_fills == 1
    d.finish()
    _assert_replays(d.m)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule_set=st.sampled_from(sorted(RULE_SETS)),
    first=st.sampled_from(
        [
            {"type": "open", "side": "long", "margin": "500", "leverage": 10},
            {"type": "open", "side": "short", "margin": "500", "leverage": 20},
            {"type": "close"},
            {"type": "ability", "ability": "trade_delay", "target": "p1"},
            {"type": "ability", "ability": "shield"},
            {"type": "peek"},
        ]
    ),
    delayed=st.booleans(),
    gaps=st.lists(st.tuples(st.integers(1, 5_000), st.integers(-300, 300)), max_size=6),
    same_payload=st.booleans(),
)
def test_a_repeated_client_order_id_never_executes_twice(
    rule_set: str,
    first: dict[str, Any],
    delayed: bool,
    gaps: list[tuple[int, int]],
    same_payload: bool,
) -> None:
    """The second answer is the first one, even after time and prices moved on."""
    d = Driver(RULE_SETS[rule_set])
    d.wait(6_000)
    if delayed:  # p2 slows p1, so p1's order is answered `delayed` and runs later
        d.submit("p2", {"type": "ability", "ability": "trade_delay", "target": "p1"})
    ack = d.submit("p1", first)
    coid = d.submitted[-1].payload["client_order_id"]
    for delta, bp in gaps:
        d.wait(delta)
        d.move(bp)
        d.repeat(len(d.submitted) - 1, same_payload)
    lines, fills = len(d.m.ledger.lines), len(d.m.fills)
    again, events = d.m.submit("p1", {**first, "client_order_id": coid}, d.t + 1)
    assert again == ack
    assert events == []
    assert (len(d.m.ledger.lines), len(d.m.fills)) == (lines, fills)
    d.finish()
    executed = _executions(d.m).get(coid, set())
    assert len(executed) <= 1
    if ack.ok and first["type"] == "open" and rule_set == "fast":
        assert len(executed) == 1  # it did run once (fast rules: no feed delay)
    _assert_replays(d.m)


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(rule_set=st.sampled_from(sorted(RULE_SETS)), script=scripts)
def test_match_record_round_trips_through_a_file_and_verifies(
    rule_set: str, script: list[tuple[Any, ...]]
) -> None:
    """What is written is what is read, and `verify` accepts it."""
    d = Driver(RULE_SETS[rule_set])
    for step in script:
        d.run(step)
    d.finish()
    record = MatchRecord(d.m.header(), list(d.m.log), d.m.result())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "match.jsonl"
        record.write(path)
        back = MatchRecord.read(path)
    assert back == record
    assert MatchRecord.parse(record.lines()) == record
    verification = verify(back)
    assert verification.ok, verification.differences
    assert verification.result == d.m.result()
    # a tampered outcome is caught
    if back.result is not None and back.result["standings"]:
        forged = {**back.result, "ledger_digest": "0" * 64}
        assert not verify(MatchRecord(back.header, back.entries, forged)).ok
