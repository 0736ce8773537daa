"""The official candles a `sync` carries: built from official prices only, bounded,
and rebuilt identically after a restore."""

from __future__ import annotations

import json
import random
from decimal import Decimal as D

import pytest

from matchserver.engine import snapshot
from matchserver.engine.candles import KEEP, OfficialCandles, parse
from matchserver.engine.match import Match, replay_entries
from matchserver.simulate import SimulationSpec, simulate
from tradearena.contracts.candles import INTERVAL_MS, Candle, CandleInterval
from tradearena.modes import default_catalogue


def wire(candles: OfficialCandles) -> list[dict[str, object]]:
    return candles.wire_items()


def test_prices_fold_into_one_second_candles_the_last_one_forming() -> None:
    c = OfficialCandles()
    for at, price in [(1000, "10"), (1200, "12"), (1999, "9.50"), (2000, "11"), (3500, "11.5")]:
        c.add(at, D(price))
    assert wire(c) == [
        {"t": 1000, "o": "10", "h": "12", "l": "9.5", "c": "9.5", "n": 3},
        {"t": 2000, "o": "11", "h": "11", "l": "11", "c": "11", "n": 1},
        {"t": 3000, "o": "11.5", "h": "11.5", "l": "11.5", "c": "11.5", "n": 1},
    ]
    assert len(c) == 3
    assert c.to_wire()["interval"] == "1s"


def test_no_prices_no_candles() -> None:
    assert wire(OfficialCandles()) == []
    assert len(OfficialCandles()) == 0


def test_keeps_the_last_900_seconds_including_the_forming_candle() -> None:
    c = OfficialCandles()
    for second in range(2000):
        c.add(second * 1000 + 300, D(second + 1))
    items = list(c.items())
    assert len(items) == KEEP == 900
    assert [x.t for x in items] == [s * 1000 for s in range(1100, 2000)]


def test_a_gap_drops_candles_older_than_the_window_not_just_beyond_the_count() -> None:
    c = OfficialCandles(keep=5)
    for second in (0, 1, 2, 3):
        c.add(second * 1000, D(1))
    c.add(6000, D(2))  # window: open times 2000..6000
    assert [x.t for x in c.items()] == [2000, 3000, 6000]
    c.add(60_000, D(3))
    assert [x.t for x in c.items()] == [60_000]


def test_wire_prices_are_plain_decimals_and_parse_back() -> None:
    c = OfficialCandles()
    for at, price in [(5000, "1E+5"), (5100, "100000.10"), (5200, "0.00001"), (5300, "99999.9")]:
        c.add(at, D(price))
    (raw,) = c.wire_items()
    assert raw == {
        "t": 5000,
        "o": "100000",
        "h": "100000.1",
        "l": "0.00001",
        "c": "99999.9",
        "n": 4,
    }
    assert parse(json.loads(json.dumps(raw))) == Candle(
        5000, D(100000), D("100000.1"), D("0.00001"), D("99999.9"), 4
    )
    assert c.items() == [parse(raw)]
    assert INTERVAL_MS[CandleInterval.S1] == 1000
    assert INTERVAL_MS[CandleInterval.M1] == 60_000


def test_sync_candles_never_show_a_price_still_in_the_delay_line() -> None:
    rules = default_catalogue().mode("standard").rules.with_overrides(price_delay_ms=3000)
    m = Match("m-1", "standard", rules, ["alice"], 180_000, 0)
    m.feed(D("100"), 0)
    m.feed(D("101"), 1500)
    m.feed(D("777"), 2500)  # live, official only at 5500
    m.advance(4600)
    state = m.sync_state("alice")
    prices = {v for c in state["candles"]["items"] for k, v in c.items() if k in "ohlc"}
    assert prices == {"100", "101"}
    assert state["official_price"] == "101"
    assert state["candles"]["items"][-1]["c"] == state["official_price"]
    assert m.delay_line.live() == D("777")
    m.advance(5500)
    assert m.sync_state("alice")["candles"]["items"][-1]["c"] == "777"


def test_ticks_and_candles_agree() -> None:
    """The candles are exactly the official `tick` events, per second, the last 900."""
    rng = random.Random(5)
    rules = default_catalogue().mode("standard").rules.with_overrides(price_delay_ms=2000)
    m = Match("m-1", "standard", rules, ["alice"], 3_600_000, 0)
    ticks: list[tuple[int, D]] = []
    price, at = D(50_000), 0
    for _ in range(6000):
        at += rng.choice((37, 120, 250, 900, 1000))
        price += D(rng.randint(-200, 200)) / 100
        for ev in m.feed(price, at) + m.advance(at):
            if ev.kind == "tick":
                ticks.append((ev.data["at"], D(ev.data["price"])))
    assert len(ticks) > 5000
    by_second: dict[int, list[D]] = {}
    for t, p in ticks:
        by_second.setdefault(t - t % 1000, []).append(p)
    expected = [
        Candle(t, ps[0], max(ps), min(ps), ps[-1], len(ps)) for t, ps in sorted(by_second.items())
    ][-KEEP:]
    assert list(m.candles.items()) == expected
    assert [parse(raw) for raw in m.sync_state("alice")["candles"]["items"]] == expected
    # A restore after 45 minutes of prices skips the ones that no longer matter.
    restored = snapshot.restore(json.loads(json.dumps(snapshot.take(m))), m.log)
    assert list(restored.candles.items()) == expected


@pytest.mark.parametrize("seed", [1, 2])
def test_restore_from_a_snapshot_rebuilds_the_same_candles(seed: int) -> None:
    record = simulate(default_catalogue(), SimulationSpec(players=4, seed=seed))
    assert record.result is not None
    end = record.result["ended_at"]
    full, _ = replay_entries(record.header, record.entries, until=end)
    assert len(full.candles) > 10
    for cut in (1, len(record.entries) // 2, len(record.entries) - 1):
        head, _ = replay_entries(record.header, record.entries[:cut])
        snap = json.loads(json.dumps(snapshot.take(head)))
        restored = snapshot.restore(snap, record.entries[:cut])
        assert wire(restored.candles) == wire(head.candles), f"cut at {cut}"
        for entry in record.entries[cut:]:
            restored.apply_entry(entry)
        restored.advance(end)
        assert wire(restored.candles) == wire(full.candles), f"cut at {cut}"
