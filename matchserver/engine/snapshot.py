"""Engine snapshots: the whole state of a match as JSON, to bound recovery time.

A restarted server loads the newest snapshot and replays only the log entries
after it, instead of the whole log. The snapshot is plain data (no pickle):
restoring it cannot run code, and a snapshot that does not fit is ignored in
favour of a full replay. The log itself is not in the snapshot; the caller
passes the entries it covers, so digests over the whole log stay exact.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tradearena.contracts.phases import GamePhase

from .actions import action_to_wire, parse_logged_action
from .candles import official_prices
from .codes import Code
from .events import Ack
from .ledger import Ledger, LedgerLine
from .log import LogEntry
from .match import Match, _Due
from .money import fmt
from .positions import Position

SNAPSHOT_SCHEMA = 1


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _position(pos: Position) -> dict[str, Any]:
    return {
        "side": pos.side,
        "qty": fmt(pos.qty),
        "entry": fmt(pos.entry),
        "margin": fmt(pos.margin),
        "leverage": fmt(pos.leverage),
        "liquidation": fmt(pos.liquidation),
        "stop_loss": fmt(pos.stop_loss),
        "take_profit": fmt(pos.take_profit),
        "opened_at": pos.opened_at,
        "version": pos.version,
    }


def _due_payload(what: _Due, payload: Any) -> Any:
    if what is _Due.ORDER:
        return action_to_wire(payload[0])
    if what is _Due.EXPIRE:
        return list(payload)
    return payload


def take(match: Match) -> dict[str, Any]:
    """The state after the first `len(match.log)` log entries."""
    players = {}
    for pid, p in match.players.items():
        players[pid] = {
            "position": None if p.position is None else _position(p.position),
            "charges": p.charges,
            "cooldown_until": p.cooldown_until,
            "delayed_until": p.delayed_until,
            "delayed_by": p.delayed_by,
            "shield_until": p.shield_until,
            "peek_until": p.peek_until,
            "connected": p.connected,
            "ever_connected": p.ever_connected,
            "disconnect_token": p.disconnect_token,
            "reconnects": p.reconnects,
            "restart_pending": p.restart_pending,
            "abandoned_at": p.abandoned_at,
            "trades": p.trades,
            "fees": fmt(p.fees),
            "realized": fmt(p.realized),
            "reached_at": p.reached_at,
            "seen": {k: [a.ok, str(a.code), a.message, a.data] for k, a in p.seen.items()},
            "bucket": [p.bucket.milli, p.bucket.since],
            "peek": [p.peek.milli, p.peek.since],
        }
    return {
        "schema": SNAPSHOT_SCHEMA,
        "header": match.header(),
        "log_entries": len(match.log),
        "now": match.now,
        "phase": str(match.phase),
        "started_at": match.started_at,
        "end_at": match.end_at,
        "ended_at": match.ended_at,
        "end_reason": match.end_reason,
        "official": fmt(match.official),
        "official_at": match.official_at,
        "eval_price": fmt(match._eval_price),
        "frozen": match.frozen,
        "frozen_since": match._frozen_since,
        "frozen_ms": match.frozen_ms,
        "delay_line": [[at, fmt(price)] for at, price in match.delay_line._pending],
        "due": [
            [due, prio, seq, what.name, player, _due_payload(what, payload)]
            for due, prio, seq, what, player, payload in match._due
        ],
        "due_seq": match._due_seq,
        "peekers": sorted(match._peekers),
        "ledger": [line.to_wire() for line in match.ledger.lines],
        "fills": match.fills,
        "players": players,
    }


def restore(snapshot: dict[str, Any], log: list[LogEntry]) -> Match:
    """Rebuild a match from a snapshot and the log entries it covers (exactly those)."""
    if snapshot.get("schema") != SNAPSHOT_SCHEMA:
        raise ValueError(f"unsupported snapshot schema {snapshot.get('schema')!r}")
    if len(log) != snapshot["log_entries"]:
        raise ValueError(f"snapshot covers {snapshot['log_entries']} entries, got {len(log)}")
    m = Match.from_header(snapshot["header"])
    m.ledger = Ledger.from_lines(
        [
            LedgerLine(
                raw["seq"],
                raw["at"],
                raw["debit"],
                raw["credit"],
                Decimal(raw["amount"]),
                raw["kind"],
                raw["player"],
                raw["ref"],
            )
            for raw in snapshot["ledger"]
        ]
    )
    m.log = list(log)
    m.fills = list(snapshot["fills"])
    m.now = snapshot["now"]
    m.phase = GamePhase(snapshot["phase"])
    m.started_at, m.end_at = snapshot["started_at"], snapshot["end_at"]
    m.ended_at, m.end_reason = snapshot["ended_at"], snapshot["end_reason"]
    m.official, m.official_at = _dec(snapshot["official"]), snapshot["official_at"]
    m._eval_price = _dec(snapshot["eval_price"])
    m.frozen, m._frozen_since = snapshot["frozen"], snapshot["frozen_since"]
    m.frozen_ms = snapshot["frozen_ms"]
    for at, price in snapshot["delay_line"]:
        m.delay_line.push(at, Decimal(price))
    if m.official_at is not None:  # the candles: rebuilt from the logged prices
        since = m.candles.window_start(m.official_at)
        for at, price in official_prices(log, m.rules.price_delay_ms, len(m.delay_line), since):
            m.candles.add(at, price)
    m._due = []
    for due, prio, seq, name, player, raw_payload in snapshot["due"]:
        what = _Due[name]
        payload: Any = raw_payload
        if what is _Due.ORDER:
            payload = (parse_logged_action(raw_payload),)
        elif what is _Due.EXPIRE:
            payload = tuple(raw_payload)
        m._due.append((due, prio, seq, what, player, payload))
    m._due_seq = snapshot["due_seq"]
    m._peekers = set(snapshot["peekers"])
    for pid, raw in snapshot["players"].items():
        p = m.players[pid]
        pos = raw["position"]
        if pos is not None:
            p.position = Position(
                pid,
                pos["side"],
                Decimal(pos["qty"]),
                Decimal(pos["entry"]),
                Decimal(pos["margin"]),
                Decimal(pos["leverage"]),
                Decimal(pos["liquidation"]),
                _dec(pos["stop_loss"]),
                _dec(pos["take_profit"]),
                pos["opened_at"],
                pos["version"],
            )
            m.book.index(p.position)
        for name in (
            "charges",
            "cooldown_until",
            "delayed_until",
            "delayed_by",
            "shield_until",
            "peek_until",
            "connected",
            "ever_connected",
            "disconnect_token",
            "reconnects",
            "restart_pending",
            "abandoned_at",
            "trades",
            "reached_at",
        ):
            setattr(p, name, raw[name])
        p.fees, p.realized = Decimal(raw["fees"]), Decimal(raw["realized"])
        p.seen = {
            k: Ack(ok, Code(code), msg, data) for k, (ok, code, msg, data) in raw["seen"].items()
        }
        p.bucket.milli, p.bucket.since = raw["bucket"]
        p.peek.milli, p.peek.since = raw["peek"]
    return m
