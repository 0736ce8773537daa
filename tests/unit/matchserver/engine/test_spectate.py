"""The spectator's delayed view (matchserver.engine.spectate): never anything newer
than the delay, and the same as the match it shadows once time has caught up."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from matchserver.engine.match import Match, replay_entries
from matchserver.engine.spectate import VIEW_ROWS, DelayedView, spectator_view
from matchserver.simulate import SimulationSpec, simulate
from tradearena.modes import default_catalogue

DELAY = 10_000
PRICE_DELAY = 2_000
STEP = 100
DISTINCT = "123456.78"


def live_match() -> Match:
    rules = default_catalogue().mode("standard").rules.with_overrides(price_delay_ms=PRICE_DELAY)
    m = Match("m-1", "standard", rules, ("alice", "bob"), 180_000, 0)
    for p in ("alice", "bob"):
        m.connect(p, 0)
    return m


def price_at(t: int) -> D:
    return D(DISTINCT) if t == 5_000 else D(100_000 + (t // STEP) % 7)


def test_a_trade_and_a_price_show_only_after_the_delay() -> None:
    m = live_match()
    view = DelayedView(m.header(), DELAY, "BTCUSDT")
    traded_at = None
    seen: list[dict[str, Any]] = []
    for now in range(0, 30_000, STEP):
        m.feed(price_at(now), now)
        m.advance(now)
        if m.official is not None and m.phase.value == "waiting":
            m.start(now)
        if traded_at is None and m.phase.value == "live" and now >= 4_000:
            assert m.submit(
                "alice",
                {
                    "type": "open",
                    "side": "long",
                    "margin": "100",
                    "leverage": 5,
                    "client_order_id": "a-1",
                },
                now,
            )[0].ok
            traded_at = now
        assert view.catch_up(m.log, now, m.now)
        at = view.at
        assert at is not None
        assert at <= now - DELAY
        frame = view.view(spectators=1)
        assert frame["at"] == at
        seen.append(frame)
    assert traded_at is not None
    # The trade: in no view before traded_at + DELAY, in every one from then on.
    for frame in seen:
        alice = next(r for r in frame["players"] if r["player"] == "alice")
        assert (alice["position"] is not None) == (frame["at"] >= traded_at), frame["at"]
        assert alice["trades"] == (1 if frame["at"] >= traded_at else 0)
    # The distinctive price logged at 5 s: official at 5 s + PRICE_DELAY live, so in a
    # view only from 5 s + PRICE_DELAY (+ DELAY of wall time); never earlier.
    showing = [f for f in seen if f["official_price"] == DISTINCT]
    assert showing
    assert all(f["at"] >= 5_000 + PRICE_DELAY for f in showing)
    for f in seen:
        if f["at"] < 5_000 + PRICE_DELAY:
            assert f["official_price"] != DISTINCT
            assert f["candle"] is None or DISTINCT not in f["candle"].values()
    assert any(f["candle"] and f["candle"]["h"] == DISTINCT for f in showing)


def test_the_view_is_the_match_as_it_was_then() -> None:
    record = simulate(default_catalogue(), SimulationSpec(mode="standard", players=8, seed=3))
    end = record.result["ended_at"] if record.result else None
    assert end is not None
    view = DelayedView(record.header, DELAY, "BTCUSDT")
    most = 0
    for now in range(DELAY, end + DELAY + 1, 7_919):
        steps = 1
        while not view.catch_up(record.entries, now, live_now=end, limit=5):
            steps += 1  # a big catch-up in slices, as a server builds a late view
        most = max(most, steps)
        at = view.at
        assert at is not None
        # From scratch: only the entries at or before the view's time, then time to it.
        then, _ = replay_entries(record.header, [e for e in record.entries if e.at <= at], at)
        assert view.view(0) == spectator_view(then, at, DELAY, "BTCUSDT", 0)
        assert view.shadow.candles.wire_items() == then.candles.wire_items()
    assert most > 1  # slices were needed, and came to the same view


def test_the_view_at_the_end_is_the_result_board() -> None:
    record = simulate(default_catalogue(), SimulationSpec(mode="arena", players=30, seed=2))
    assert record.result is not None
    end = record.result["ended_at"]
    view = DelayedView(record.header, DELAY, "BTCUSDT")
    view.catch_up(record.entries, end + DELAY - 1, live_now=end)
    assert not view.over  # a millisecond before the delayed end
    view.catch_up(record.entries, end + DELAY, live_now=end)
    frame = view.sync(spectators=3)
    assert view.over
    assert frame["phase"] == record.result["phase"]
    assert frame["official_price"] == record.result["final_price"]
    standings = record.result["standings"][:VIEW_ROWS]
    assert len(frame["players"]) == VIEW_ROWS < len(record.result["standings"])
    assert [(r["rank"], r["player"], r["equity"], r["trades"]) for r in frame["players"]] == [
        (s["rank"], s["player"], s["equity"], s["trades"]) for s in standings
    ]
    assert frame["spectators"] == 3
    assert frame["candles"]["items"][-1] == frame["candle"]
