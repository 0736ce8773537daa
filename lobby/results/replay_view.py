"""A finished match as frames for the replay viewer, rebuilt from its log (pure: no I/O).

The match is replayed by the engine itself (`matchserver.engine`, which is pure), so
what the viewer shows is what the match server computed: first the engine's
verification (`verify`: the log's order, every action's outcome, the ledger, the
recorded result), then a second pass that steps the same replay through time and
takes a frame

* every `FRAME_MS` of match time from the start to the end (both included), and
* at every moment a fill happened (an order, a stop, a liquidation, the settlement);
  a fill frame at the time of a second's frame takes its place.

Frames are in time order with distinct times. Each is a compact object:

    {"t": ms since the start, "p": official price (string, null while none),
     "b": [player indexes in board order, rank 1 first]   when the order changed,
     "e": {"<index>": equity}          only players whose equity changed,
     "c": {"<index>": cash}            only players whose cash changed,
     "pos": {"<index>": position|null} only players whose position changed (all in the first),
     "s": {"<index>": status}          only players whose status changed,
     "f": [[index, reason, side, qty, price, realized_pnl], ...]   fills at this moment}

The first frame (the start) carries every key for every player; a key missing later
means "as in the previous frame" (`fold` rebuilds complete frames). Players are
indexed in the order of the header's `players`. Beside the frames, `candles`: the official 1 s candles of the match (`candles`), so a
chart shows every official price, not only the one at each frame. A position is the engine's wire form (`Position.to_wire`) without the unrealised PnL,
which changes with every price: it is `equity - cash - margin`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from matchserver.engine import ledger
from matchserver.engine.candles import OfficialCandles, official_prices
from matchserver.engine.log import LogEntry, MatchRecord
from matchserver.engine.match import Match, PlayerState
from matchserver.engine.money import fmt
from matchserver.engine.replay import Verification, verify

FRAME_MS = 1000  # a frame every second of match time
VIEW_VERSION = 1  # bumped when the frames' form changes (part of the ETag)

Frame = dict[str, Any]


@dataclass(frozen=True)
class Replayed:
    """A verified replay: the engine's verification and, when it passed, the frames."""

    verification: Verification
    players: list[str]  # frame index -> player id
    frames: list[Frame]
    candles: list[list[Any]] = field(default_factory=list)


def _position(p: PlayerState) -> dict[str, Any] | None:
    if p.position is None:
        return None
    wire = p.position.to_wire(None)
    wire.pop("unrealized_pnl", None)
    return wire


class _Recorder:
    """Takes frames off a replaying match, keeping only what changed where it can."""

    def __init__(self, match: Match) -> None:
        self.match = match
        self.players = list(match.players.values())
        self.index = {p.id: i for i, p in enumerate(self.players)}
        self.frames: list[Frame] = []
        self.fills_seen = 0
        self.cash: list[str | None] = [None] * len(self.players)
        self.pos: list[dict[str, Any] | bool | None] = [False] * len(self.players)  # False: unseen
        self.status: list[str | None] = [None] * len(self.players)
        self.equity: list[str | None] = [None] * len(self.players)
        self.board: list[int] = []

    @property
    def started(self) -> int | None:
        return self.match.started_at

    def take(self) -> None:
        m = self.match
        assert m.started_at is not None
        t = m.now - m.started_at
        frame: Frame = {"t": t, "p": fmt(m.official)}
        standings = m.standings()
        equities = {p.id: eq for p, eq in standings}
        order = [self.index[p.id] for p, _ in standings]
        if order != self.board:
            frame["b"] = self.board = order
        equity, cash, pos, status = {}, {}, {}, {}
        for i, p in enumerate(self.players):
            e = fmt(equities[p.id])
            if e != self.equity[i]:
                equity[str(i)] = self.equity[i] = e
            c = fmt(m.ledger.balance(ledger.cash(p.id)))
            if c != self.cash[i]:
                cash[str(i)] = self.cash[i] = c
            wire = _position(p)
            if self.pos[i] is False or wire != self.pos[i]:
                self.pos[i] = wire
                pos[str(i)] = wire
            s = p.status()
            if s != self.status[i]:
                status[str(i)] = self.status[i] = s
        if equity:
            frame["e"] = equity
        if cash:
            frame["c"] = cash
        if pos:
            frame["pos"] = pos
        if status:
            frame["s"] = status
        fills = m.fills[self.fills_seen :]
        self.fills_seen = len(m.fills)
        if fills:
            frame["f"] = [
                [
                    self.index[f["player"]],
                    f["reason"],
                    f["side"],
                    f["qty"],
                    f["price"],
                    f["realized_pnl"],
                ]
                for f in fills
            ]
        if self.frames and self.frames[-1]["t"] == t:
            # the same moment again (a fill at a second's frame): merge, the later state wins
            merged = self.frames.pop()
            if "b" in merged and "b" not in frame:
                frame["b"] = merged["b"]
            for key in ("e", "c", "pos", "s"):
                if key in merged:
                    frame[key] = {**merged[key], **frame.get(key, {})}
            if "f" in merged:
                frame["f"] = merged["f"] + frame.get("f", [])
        self.frames.append(frame)

    def fills_pending(self) -> bool:
        return len(self.match.fills) > self.fills_seen


def _step_to(rec: _Recorder, target: int, end: int | None) -> None:
    """Let time run to `target`, taking a frame at every second boundary of the match
    and wherever a fill happened on the way (at the moment it happened)."""
    m = rec.match
    while True:
        start = rec.started
        if start is None or m.phase.over:
            m.advance(target)
            return
        boundary = start + ((m.now - start) // FRAME_MS + 1) * FRAME_MS
        due = m.next_due()
        t = min(target, boundary) if due is None or due <= m.now else min(target, boundary, due)
        if t < m.now:
            return  # nothing can go back in time
        m.advance(t)
        on_boundary = (m.now - start) % FRAME_MS == 0 and (end is None or m.now <= end)
        fresh = not rec.frames or rec.frames[-1]["t"] < m.now - start
        if rec.fills_pending() or (on_boundary and fresh):
            rec.take()
        if t >= target:
            return


def frames(
    header: Mapping[str, Any], entries: Sequence[LogEntry], until: int | None
) -> tuple[Match, list[str], list[Frame]]:
    """Replay the log, taking frames; the match as it ended, the player ids in frame
    index order, and the frames."""
    match = Match.from_header(header)
    rec = _Recorder(match)
    for entry in entries:
        _step_to(rec, entry.at, until)
        match.apply_entry(entry)
        if rec.started is not None and (not rec.frames or rec.fills_pending()):
            rec.take()
    if until is not None:
        _step_to(rec, until, until)
    if match.started_at is not None:
        final = (match.ended_at or match.now) - match.started_at
        if not rec.frames or rec.frames[-1]["t"] != final or rec.fills_pending():
            rec.take()
    return match, [p.id for p in rec.players], rec.frames


def candles(
    header: Mapping[str, Any], entries: Sequence[LogEntry], started: int, ended: int
) -> list[list[Any]]:
    """The match's official 1 s candles from its start to its end, as the engine makes
    them (`official_prices`: each logged feed price, the mode's delay later), each
    `[open time - started, open, high, low, close, prices]` (times on whole seconds of
    the clock, as the match screen's candles, so the first may open before the start)."""
    delay = int(header["rules"]["price_delay_ms"])
    book = OfficialCandles(keep=(ended - started) // 1000 + 3)
    first = started - started % 1000
    for at, price in official_prices(entries, delay, 0, since=first):
        if at > ended:
            break
        book.add(at, price)
    return [[c["t"] - started, c["o"], c["h"], c["l"], c["c"], c["n"]] for c in book.wire_items()]


def replay(record: MatchRecord) -> Replayed:
    """Verify the record with the engine; frames only when it reproduces its result."""
    verification = verify(record)
    if not verification.ok:
        return Replayed(verification, list(record.header.get("players", [])), [])
    until = record.result.get("ended_at") if record.result else None
    match, players, out = frames(record.header, record.entries, until)
    if match.result() != verification.result:  # the two passes are one replay
        problem = "the frames' replay does not end with the verified result"
        return Replayed(Verification([problem], verification.result), players, [])
    started, ended = match.started_at, match.ended_at
    bars = (
        []
        if started is None or ended is None
        else candles(record.header, record.entries, started, ended)
    )
    return Replayed(verification, players, out, bars)


def fold(frames: Sequence[Frame], players: int) -> list[Frame]:
    """Every frame complete (what a viewer rebuilds): `e`, `c`, `pos` and `s` as lists
    over the players, `b` and `p` always present."""
    state: Frame = {"e": [None] * players, "c": [None] * players, "pos": [None] * players}
    state["s"], state["b"] = [None] * players, []
    out = []
    for frame in frames:
        for key in ("e", "c", "pos", "s"):
            row = list(state[key])
            for i, value in frame.get(key, {}).items():
                row[int(i)] = value
            state[key] = row
        state["b"] = frame.get("b", state["b"])
        out.append({**state, "t": frame["t"], "p": frame["p"], "f": frame.get("f", [])})
    return out


def board(frame: Frame, players: Sequence[str]) -> list[tuple[str, str]]:
    """A folded frame's board as (player id, equity), rank 1 first."""
    return [(players[i], frame["e"][i]) for i in frame["b"]]


def _same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return Decimal(str(a)) == Decimal(str(b))


def stored_differences(
    replayed: Mapping[str, Any], match: Mapping[str, Any], players: Sequence[Mapping[str, Any]]
) -> list[str]:
    """How the replayed result differs from the one stored in PostgreSQL: the `matches`
    row (log, ledger, phase, final price) and the `match_players` rows (rank, equity,
    realized PnL, fees, trades, status), one line per difference."""
    out: list[str] = []
    for key in ("log_entries", "log_digest", "ledger_digest", "phase"):
        if match.get(key) != replayed.get(key):
            out.append(f"{key}: stored {match.get(key)!r}, replay gives {replayed.get(key)!r}")
    if not _same_number(match.get("final_price"), replayed.get("final_price")):
        out.append(
            f"final_price: stored {match.get('final_price')}, "
            f"replay gives {replayed.get('final_price')}"
        )
    rows = {str(p["user_id"]): p for p in players}
    standings = {s["player"]: s for s in replayed.get("standings", [])}
    for player in sorted(set(rows) | set(standings)):
        row, s = rows.get(player), standings.get(player)
        if row is None or s is None:
            where = "stored" if row is not None else "replayed"
            out.append(f"player {player}: only in the {where} result")
            continue
        cancelled = row["status"] == "cancelled"
        if not cancelled and row["rank"] != s["rank"]:
            out.append(f"player {player} rank: stored {row['rank']}, replay gives {s['rank']}")
        if not cancelled and row["status"] != s["status"]:
            out.append(
                f"player {player} status: stored {row['status']}, replay gives {s['status']}"
            )
        if row["trades"] != s["trades"]:
            out.append(
                f"player {player} trades: stored {row['trades']}, replay gives {s['trades']}"
            )
        for key in ("equity", "realized_pnl", "fees"):
            if (row[key] is not None or not cancelled) and not _same_number(row[key], s[key]):
                out.append(f"player {player} {key}: stored {row[key]}, replay gives {s[key]}")
    return out


def document(
    match: Mapping[str, Any],
    players: Sequence[Mapping[str, Any]],
    replayed: Replayed,
    kind: str,
) -> dict[str, Any]:
    """The replay as served: the stored match and result, the frames of a verified replay.
    `players` are the `match_players` rows with `username`, in rank order."""
    names = {str(p["user_id"]): str(p["username"]) for p in players}
    result = replayed.verification.result

    def dec(value: Any) -> str | None:
        return None if value is None else str(value)

    return {
        "match_id": match["id"],
        "mode": match["mode"],
        "format": match["format"],
        "symbol": match["symbol"],
        "kind": kind,
        "phase": match["phase"],
        "verified": replayed.verification.ok,
        "view": VIEW_VERSION,
        "frame_ms": FRAME_MS,
        "started_at": result.get("started_at"),
        "ended_at": result.get("ended_at"),
        "final_price": dec(match["final_price"]),
        "log_entries": match["log_entries"],
        "log_digest": match["log_digest"],
        "players": [{"player": p, "username": names.get(p, p)} for p in replayed.players],
        "result": [
            {
                "rank": p["rank"],
                "player": str(p["user_id"]),
                "username": str(p["username"]),
                "equity": dec(p["equity"]),
                "realized_pnl": dec(p["realized_pnl"]),
                "fees": dec(p["fees"]),
                "trades": p["trades"],
                "status": p["status"],
            }
            for p in players
        ],
        "frames": replayed.frames,
        "candles": replayed.candles,
    }
