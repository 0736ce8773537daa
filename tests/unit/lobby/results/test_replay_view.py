"""The replay viewer's frames, built from a match the engine played (`simulate`)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from functools import cache

from lobby.results import replay_view
from matchserver.engine.log import STOP, LogEntry, MatchRecord
from matchserver.engine.match import replay_entries
from matchserver.simulate import SimulationSpec, simulate
from tradearena.modes import default_catalogue

PLAYERS = 4


@cache
def played() -> MatchRecord:
    ids = tuple(str(uuid.UUID(int=700 + i)) for i in range(PLAYERS))
    spec = SimulationSpec(format="blitz", players=PLAYERS, seed=5, match_id="rv-1", player_ids=ids)
    return simulate(default_catalogue(), spec)


@cache
def replayed() -> replay_view.Replayed:
    out = replay_view.replay(played())
    assert out.verification.ok, out.verification.differences
    return out


def test_the_final_frame_shows_the_engines_result() -> None:
    rec, out = played(), replayed()
    assert rec.result is not None
    final = replay_view.fold(out.frames, len(out.players))[-1]
    expected = [(s["player"], s["equity"]) for s in rec.result["standings"]]
    assert replay_view.board(final, out.players) == expected
    assert final["t"] == rec.result["ended_at"] - rec.result["started_at"]
    assert final["p"] == rec.result["final_price"]
    assert final["pos"] == [None] * PLAYERS  # everything settled


def test_frames_are_in_time_order_one_per_second_at_least() -> None:
    rec, out = played(), replayed()
    assert rec.result is not None
    times = [f["t"] for f in out.frames]
    assert times == sorted(set(times))  # strictly increasing
    duration = rec.result["ended_at"] - rec.result["started_at"]
    assert set(range(0, duration + 1, replay_view.FRAME_MS)) <= set(times)
    assert times[0] == 0 and times[-1] == duration


def test_every_fill_appears_at_its_time() -> None:
    rec, out = played(), replayed()
    assert rec.result is not None
    match, _ = replay_entries(rec.header, rec.entries, until=rec.result["ended_at"])
    started = rec.result["started_at"]
    shown = [(f["t"], fill) for f in out.frames for fill in f.get("f", [])]
    assert len(shown) == len(match.fills) > 10
    index = {p: i for i, p in enumerate(out.players)}
    for (t, fill), engine in zip(shown, match.fills, strict=True):
        assert t == engine["at"] - started
        assert fill == [
            index[engine["player"]],
            engine["reason"],
            engine["side"],
            engine["qty"],
            engine["price"],
            engine["realized_pnl"],
        ]
    # and the position the fill left is the one shown in that frame
    folded = replay_view.fold(out.frames, len(out.players))
    for frame in folded:
        for i, reason, *_ in frame["f"]:
            if reason == "open":
                assert frame["pos"][i] is not None and "unrealized_pnl" not in frame["pos"][i]


def test_frames_carry_only_what_changed() -> None:
    out = replayed()
    first = out.frames[0]
    for key in ("e", "c", "pos", "s"):
        assert set(first[key]) == {str(i) for i in range(PLAYERS)}, key
    assert sorted(first["b"]) == list(range(PLAYERS))
    later = out.frames[1:]
    assert sum("pos" not in f and "c" not in f for f in later) > len(later) / 2
    assert any(len(f.get("e", {})) < PLAYERS for f in later)  # flat players' equity is still
    folded = replay_view.fold(out.frames, len(out.players))
    compact = len(json.dumps(out.frames, separators=(",", ":")))
    full = len(json.dumps(folded, separators=(",", ":")))
    assert compact * 3 < full
    # equity = cash + margin + unrealised PnL, so the position's part can be derived
    for frame in folded:
        for i in range(PLAYERS):
            pos = frame["pos"][i]
            if pos is None:
                assert frame["e"][i] == frame["c"][i]


def test_a_tampered_log_gives_no_frames() -> None:
    rec = played()
    assert rec.result is not None
    result = {**rec.result, "standings": list(reversed(rec.result["standings"]))}
    out = replay_view.replay(MatchRecord(rec.header, rec.entries, result))
    assert not out.verification.ok and out.frames == []


def test_stored_differences() -> None:
    rec = played()
    assert rec.result is not None
    result = rec.result
    match = {
        "log_entries": result["log_entries"],
        "log_digest": result["log_digest"],
        "ledger_digest": result["ledger_digest"],
        "phase": result["phase"],
        "final_price": Decimal(result["final_price"]),
    }
    rows = [
        {
            "user_id": uuid.UUID(s["player"]),
            "rank": s["rank"],
            "status": s["status"],
            "equity": Decimal(s["equity"]),
            "realized_pnl": Decimal(s["realized_pnl"]),
            "fees": Decimal(s["fees"]),
            "trades": s["trades"],
        }
        for s in result["standings"]
    ]
    assert replay_view.stored_differences(result, match, rows) == []
    rows[0] = {**rows[0], "equity": rows[0]["equity"] + 1}
    (line,) = replay_view.stored_differences(result, match, rows)
    assert "equity" in line and str(rows[0]["user_id"]) in line
    assert replay_view.stored_differences(result, {**match, "log_digest": "x"}, rows[1:]) != []


def test_the_official_candles_cover_the_match() -> None:
    rec, out = played(), replayed()
    assert rec.result is not None
    started, ended = rec.result["started_at"], rec.result["ended_at"]
    opens = [c[0] for c in out.candles]
    assert opens == sorted(set(opens)) and all((started + t) % 1000 == 0 for t in opens)
    assert opens[0] <= 0 < opens[0] + 1000 and opens[-1] <= ended - started
    assert out.candles[-1][4] == rec.result["final_price"]
    for _, o, high, low, c, n in out.candles:
        assert Decimal(low) <= min(Decimal(o), Decimal(c))
        assert max(Decimal(o), Decimal(c)) <= Decimal(high) and n >= 1
    # a frame on a whole second shows the price of that second's first official price
    # (when one came at that very millisecond) or else the close of the second before
    by_open = {t: (o, c) for t, o, _, _, c, _ in out.candles}
    checked = 0
    for frame in out.frames[1:]:
        if (started + frame["t"]) % 1000 or frame["t"] - 1000 not in by_open:
            continue
        opens_here = by_open.get(frame["t"], (None, None))[0]
        assert frame["p"] in (opens_here, by_open[frame["t"] - 1000][1])
        checked += 1
    assert checked > 60


def test_a_match_settled_early_ends_at_its_stop() -> None:
    rec = played()
    kept = rec.entries[: len(rec.entries) // 2]
    stop = LogEntry(
        len(kept) + 1, kept[-1].at + 10, STOP, None, {"cancelled": False, "reason": "shutdown"}
    )
    match, _ = replay_entries(rec.header, [*kept, stop])
    result = match.result()
    assert result["reason"] == "shutdown" and result["phase"] == "finished"
    out = replay_view.replay(MatchRecord(rec.header, [*kept, stop], result))
    assert out.verification.ok, out.verification.differences
    final = replay_view.fold(out.frames, len(out.players))[-1]
    assert final["t"] == result["ended_at"] - result["started_at"]
    assert replay_view.board(final, out.players) == [
        (s["player"], s["equity"]) for s in result["standings"]
    ]
    assert final["pos"] == [None] * PLAYERS
    assert any(f[1] == "settlement" for f in out.frames[-1].get("f", [])) or all(
        p is None for p in replay_view.fold(out.frames, PLAYERS)[-2]["pos"]
    )
