"""One match, server-authoritative: the whole rule set as a deterministic state machine.

Inputs (each appended to the match log): feed prices, start, player actions,
connects, disconnects, stop. Time is an argument of every call. Things that
happen at a later time (official prices, delayed orders, grace expiry, charge
regeneration, effect ends, the final bell) are scheduled and processed strictly
in time order before any input at or after their due time, so the state at a
given time never depends on how often `advance` was called.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum
from typing import Any

from tradearena.contracts.phases import GAME_OVER, GamePhase
from tradearena.modes import Rules

from . import ledger as acct
from .actions import (
    Action,
    ActionError,
    ClosePosition,
    OpenOrder,
    Peek,
    SetStops,
    UseAbility,
    action_to_wire,
    parse_action,
    parse_logged_action,
)
from .candles import OfficialCandles
from .codes import Code
from .events import Ack, Event, accept, reject
from .ledger import Ledger
from .log import (
    ACTION,
    CONNECT,
    DISCONNECT,
    LOG_SCHEMA,
    PRICE,
    RESTART,
    START,
    STOP,
    LogEntry,
    digest,
)
from .meters import PeekMeter, TokenBucket
from .money import ENTRY_STEP, ZERO, floor_to, fmt, money, on_grid
from .positions import LONG, SHORT, Position, close_amounts, liquidation_price, side_name
from .prices import DelayLine
from .triggers import TriggerBook

RESULT_SCHEMA = 1
LEADER = "leader"
LEADERBOARD_IN_STATE = 10  # rows of the board a state resync carries
_ACTION_TYPES = (OpenOrder, ClosePosition, SetStops, UseAbility, Peek)
_ORDER_TYPES = (OpenOrder, ClosePosition)
_LEVERAGE_STEP = Decimal("0.01")


class _Due(IntEnum):
    """Scheduled work; the value orders things due at the same millisecond."""

    ORDER = 2
    GRACE = 3
    REGEN = 4
    EXPIRE = 5
    END = 9


@dataclass(slots=True)
class PlayerState:
    id: str
    bucket: TokenBucket
    peek: PeekMeter
    position: Position | None = None
    charges: int = 0
    cooldown_until: int = 0
    delayed_until: int = 0
    delayed_by: str | None = None
    shield_until: int = 0
    peek_until: int = 0
    connected: bool = False
    ever_connected: bool = False
    disconnect_token: int = 0
    reconnects: int = 0
    restart_pending: bool = False  # lost its connection to a server restart
    abandoned_at: int | None = None
    trades: int = 0
    fees: Decimal = ZERO
    realized: Decimal = ZERO
    reached_at: int = 0  # last time the player's balance changed (ranking tie-break)
    seen: dict[str, Ack] = field(default_factory=dict)  # client_order_id -> first answer

    @property
    def abandoned(self) -> bool:
        return self.abandoned_at is not None

    def status(self) -> str:
        if self.abandoned:
            return "abandoned"
        return "connected" if self.connected else "disconnected"


class Match:
    def __init__(
        self,
        match_id: str,
        mode: str,
        rules: Rules,
        players: Sequence[str],
        duration_ms: int,
        created_at: int,
    ) -> None:
        if not players:
            raise ValueError("a match needs players")
        if len(set(players)) != len(players):
            raise ValueError("player ids must be unique")
        if LEADER in players:
            raise ValueError(f"{LEADER!r} is reserved and cannot be a player id")
        if duration_ms <= 0:
            raise ValueError("duration_ms must be positive")
        self.match_id = match_id
        self.mode = mode
        self.rules = rules
        self.duration_ms = duration_ms
        self.created_at = created_at
        self.now = created_at
        self.phase = GamePhase.WAITING
        self.started_at: int | None = None
        self.end_at: int | None = None
        self.ended_at: int | None = None
        self.end_reason: str | None = None

        self.ledger = Ledger()
        self.log: list[LogEntry] = []
        self.fills: list[dict[str, Any]] = []
        self.book = TriggerBook()
        self.delay_line = DelayLine(rules.price_delay_ms)
        self.official: Decimal | None = None
        self.official_at: int | None = None
        self.candles = OfficialCandles()
        self._eval_price: Decimal | None = None
        self.frozen = True  # no official price yet
        self._frozen_since: int | None = None
        self.frozen_ms = 0  # time spent frozen while live
        self._due: list[tuple[int, int, int, _Due, str | None, Any]] = []
        self._due_seq = 0
        self._out: list[Event] = []
        self._peekers: set[str] = set()

        self.players: dict[str, PlayerState] = {}
        for pid in players:
            self.players[pid] = PlayerState(
                pid,
                TokenBucket(rules.rate_limit.per_s, rules.rate_limit.burst),
                PeekMeter(rules.peek.meter_max, rules.peek.refill_per_s),
                charges=rules.action_bar.initial_charges,
                reached_at=created_at,
            )
            self.ledger.transfer(
                created_at,
                acct.BANKROLL,
                acct.cash(pid),
                rules.bankroll,
                "funding",
                pid,
                "bankroll",
            )

    # ------------------------------------------------------------------ header
    def header(self) -> dict[str, Any]:
        return {
            "schema": LOG_SCHEMA,
            "match_id": self.match_id,
            "mode": self.mode,
            # Spectating never changes the match: not part of its record.
            "rules": self.rules.model_dump(mode="json", exclude={"spectate"}),
            "players": list(self.players),
            "duration_ms": self.duration_ms,
            "created_at": self.created_at,
        }

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> Match:
        return cls(
            header["match_id"],
            header["mode"],
            Rules.model_validate(header["rules"]),
            header["players"],
            int(header["duration_ms"]),
            int(header["created_at"]),
        )

    # ------------------------------------------------------------------ inputs
    def feed(self, price: Decimal, now: int, ref: str | None = None) -> list[Event]:
        """A live feed price arrived at server time `now`; `ref` identifies the tick upstream
        (so a restarted server can tell which ticks it already has)."""
        self._advance(max(now, self.now))
        if self.phase.over:
            return self._drain()
        if not price.is_finite() or price <= 0:
            raise ValueError(f"feed price must be a positive finite number, got {price}")
        data = {"price": fmt(price)} if ref is None else {"price": fmt(price), "ref": ref}
        self._record(now, PRICE, None, data)
        return self._drain()

    def start(self, now: int) -> list[Event]:
        if self.phase is not GamePhase.WAITING:
            raise RuntimeError(f"cannot start a match that is {self.phase}")
        self._record(now, START, None, None)
        return self._drain()

    def submit(
        self, player: str, action: Action | Mapping[str, Any], now: int
    ) -> tuple[Ack, list[Event]]:
        """A player action. Duplicates, malformed and rate-limited ones are not logged."""
        state = self.players.get(player)
        if state is None:
            return reject(Code.UNKNOWN_PLAYER), []
        if not isinstance(action, _ACTION_TYPES):
            try:
                action = parse_action(action)
            except ActionError as exc:
                return reject(Code.INVALID_ACTION, exc.message), []
        first = state.seen.get(action.client_order_id)
        if first is not None:
            return first, []
        now = max(now, self.now)
        self._advance(now)
        if not state.bucket.take(now):
            return reject(Code.RATE_LIMITED), self._drain()
        if self.phase in GAME_OVER:  # the final bell rang first: nothing more enters the log
            return reject(Code.MATCH_NOT_LIVE), self._drain()
        # The entry is written once, after the action ran: the outcome is part of the
        # record, so a replay can prove it gets the same one. (An action never reads the
        # log, and the clock is already at `now`.)
        ack = self._on_action(state, action, now)
        state.seen[action.client_order_id] = ack
        data = action_to_wire(action)
        data["outcome"] = str(ack.code)
        self.log.append(LogEntry(len(self.log) + 1, now, ACTION, player, data))
        return ack, self._drain()

    def connect(self, player: str, now: int) -> tuple[Ack, list[Event]]:
        state = self.players.get(player)
        if state is None:
            return reject(Code.UNKNOWN_PLAYER), []
        self._advance(max(now, self.now))
        if state.abandoned:
            return reject(Code.PLAYER_ABANDONED), self._drain()
        if self.phase.over:
            return reject(Code.MATCH_NOT_LIVE, "the match is over"), self._drain()
        if state.connected:  # nothing changes, so nothing enters the log
            return accept(), self._drain()
        self._record(now, CONNECT, player, None)
        return accept(), self._drain()

    def disconnect(self, player: str, now: int) -> list[Event]:
        state = self.players.get(player)
        self._advance(max(now, self.now))
        if state is None or not state.connected or self.phase.over:
            return self._drain()
        self._record(now, DISCONNECT, player, None)
        return self._drain()

    def restarted(self, now: int) -> list[Event]:
        """The server came back after a crash: all sockets are gone, but that was not the
        players' doing, so their next connect does not use up a reconnect."""
        self._advance(max(now, self.now))
        if self.phase.over:
            return self._drain()
        self._record(now, RESTART, None, None)
        return self._drain()

    def stop(self, now: int, *, cancelled: bool, reason: str) -> list[Event]:
        """End early: settle (shutdown) or cancel. Open positions close either way."""
        self._advance(max(now, self.now))
        if self.phase.over:
            return self._drain()
        self._record(now, STOP, None, {"cancelled": cancelled, "reason": reason})
        return self._drain()

    def advance(self, now: int) -> list[Event]:
        """Let time pass: nothing is logged, since what happens is already scheduled."""
        self._advance(max(now, self.now))
        return self._drain()

    # ------------------------------------------------------------------ queries
    def equity(self, state: PlayerState) -> Decimal:
        eq = self.ledger.balance(acct.cash(state.id))
        pos = state.position
        if pos is not None and self.official is not None:
            eq += pos.margin + pos.unrealized(self.official)
        elif pos is not None:
            eq += pos.margin
        return eq

    def standings(self) -> list[tuple[PlayerState, Decimal]]:
        """Ranking: equity descending, then whoever reached it first, then player id."""
        rows = [(p, self.equity(p)) for p in self.players.values()]
        rows.sort(key=lambda r: (-r[1], r[0].reached_at, r[0].id))
        return rows

    def leaderboard(self) -> list[dict[str, Any]]:
        return [
            {
                "rank": rank,
                "player": p.id,
                "equity": fmt(eq),
                "status": p.status(),
                "has_position": p.position is not None,
            }
            for rank, (p, eq) in enumerate(self.standings(), 1)
        ]

    def player_state(self, player: str) -> dict[str, Any]:
        """Everything a (re)connecting client needs to redraw its screen."""
        p = self.players[player]
        now = self.now
        return {
            "match_id": self.match_id,
            "mode": self.mode,
            "phase": str(self.phase),
            "now": now,
            "started_at": self.started_at,
            "end_at": self.end_at,
            "official_price": fmt(self.official),
            "frozen": self.frozen,
            "player": player,
            "status": p.status(),
            "balance": fmt(self.ledger.balance(acct.cash(player))),
            "equity": fmt(self.equity(p)),
            "position": p.position.to_wire(self.official) if p.position else None,
            "charges": p.charges,
            "max_charges": self.rules.action_bar.max_charges,
            "peek_meter": p.peek.level(now) if self.phase is GamePhase.LIVE else 0,
            "cooldown_until": p.cooldown_until,
            "effects": {
                "trade_delay_until": p.delayed_until if p.delayed_until > now else None,
                "shield_until": p.shield_until if p.shield_until > now else None,
                "peek_until": p.peek_until if p.peek_until > now else None,
            },
            "reconnects_left": self.rules.disconnect.max_reconnects - p.reconnects,
            "trades": p.trades,
            "leaderboard": self.leaderboard()[:LEADERBOARD_IN_STATE],
        }

    def sync_state(self, player: str) -> dict[str, Any]:
        """What a `sync` answers: the player's state and the recent official candles."""
        return {**self.player_state(player), "candles": self.candles.to_wire()}

    def result(self) -> dict[str, Any]:
        """The match outcome; replay recomputes exactly this and compares."""
        standings = [
            {
                "rank": rank,
                "player": p.id,
                "equity": fmt(eq),
                "realized_pnl": fmt(p.realized),
                "fees": fmt(p.fees),
                "trades": p.trades,
                "status": "abandoned" if p.abandoned else "finished",
            }
            for rank, (p, eq) in enumerate(self.standings(), 1)
        ]
        return {
            "schema": RESULT_SCHEMA,
            "match_id": self.match_id,
            "mode": self.mode,
            "phase": str(self.phase),
            "reason": self.end_reason,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "final_price": fmt(self.official),
            "frozen_ms": self.frozen_ms,
            "standings": standings,
            "ledger_lines": len(self.ledger.lines),
            "ledger_digest": self.ledger.digest(),
            "log_entries": len(self.log),
            "log_digest": digest(self.log),
        }

    def reconcile(self) -> list[str]:
        """Problems found when checking the ledger against balances; empty when sound."""
        problems: list[str] = []
        recomputed = self.ledger.recompute()
        total = sum(recomputed.values(), ZERO)
        if total != 0:
            problems.append(f"accounts sum to {total}, not 0")
        for pid, p in self.players.items():
            cash = recomputed.get(acct.cash(pid), ZERO)
            if cash != self.ledger.balance(acct.cash(pid)):
                problems.append(
                    f"{pid}: running cash {self.ledger.balance(acct.cash(pid))} != {cash}"
                )
            if cash < 0:
                problems.append(f"{pid}: negative cash {cash}")
            locked = recomputed.get(acct.margin(pid), ZERO)
            expected = p.position.margin if p.position else ZERO
            if locked != expected:
                problems.append(f"{pid}: margin account {locked} != position margin {expected}")
        return problems

    # ------------------------------------------------------------------ the log
    def _record(self, now: int, kind: str, player: str | None, data: dict[str, Any] | None) -> None:
        """Log and apply an input other than an action (`submit` logs those itself)."""
        now = max(now, self.now)
        self._advance(now)
        if self.phase.over:  # the final bell rang first: nothing more enters the log
            return
        self.log.append(LogEntry(len(self.log) + 1, now, kind, player, data))
        self._apply(kind, player, data, None, now)

    def apply_entry(self, entry: LogEntry) -> Ack | None:
        """Replay one logged input (recovery and verification)."""
        if entry.seq != len(self.log) + 1:
            raise ValueError(f"log entry {entry.seq} out of order (expected {len(self.log) + 1})")
        if entry.at < self.now:
            raise ValueError(f"log entry {entry.seq} goes back in time")
        self._advance(entry.at)
        data = dict(entry.data) if entry.data is not None else None
        action: Action | None = None
        if entry.kind == ACTION:
            assert data is not None
            data.pop("outcome", None)
            action = parse_logged_action(data)
            state = self.players[entry.player or ""]
            state.bucket.take(entry.at)  # keep the limiter in step with the live run
        self.log.append(entry)
        ack = self._apply(entry.kind, entry.player, data, action, entry.at)
        self._out.clear()
        return ack

    def _apply(
        self,
        kind: str,
        player: str | None,
        data: dict[str, Any] | None,
        action: Action | None,
        now: int,
    ) -> Ack | None:
        if kind == PRICE:
            assert data is not None
            self._on_price(Decimal(data["price"]), now)
        elif kind == START:
            self._on_start(now)
        elif kind == ACTION:
            assert player is not None and action is not None
            state = self.players[player]
            ack = self._on_action(state, action, now)
            state.seen[action.client_order_id] = ack
            return ack
        elif kind == CONNECT:
            self._on_connect(self.players[player or ""], now)
        elif kind == DISCONNECT:
            self._on_disconnect(self.players[player or ""], now)
        elif kind == RESTART:
            for p in self.players.values():
                if p.connected:
                    p.restart_pending = True
                    self._on_disconnect(p, now)
        elif kind == STOP:
            assert data is not None
            self._settle(
                now,
                GamePhase.CANCELLED if data["cancelled"] else GamePhase.FINISHED,
                data["reason"],
            )
        else:
            raise ValueError(f"unknown log entry kind {kind!r}")
        return None

    # ------------------------------------------------------------------ time
    def _schedule(self, due: int, what: _Due, player: str | None, payload: Any = None) -> None:
        self._due_seq += 1
        heapq.heappush(self._due, (due, int(what), self._due_seq, what, player, payload))

    def next_due(self) -> int | None:
        """When something is next scheduled to happen (so a server can wake just then)."""
        if self.phase.over:
            return None
        candidates = [self.delay_line.next_due()]
        if not self.frozen and self.official_at is not None:
            candidates.append(self.official_at + self.rules.stale_after_ms + 1)
        if self._due:
            candidates.append(self._due[0][0])
        present = [c for c in candidates if c is not None]
        return min(present) if present else None

    def _advance(self, now: int) -> None:
        """Process everything due at or before `now`, earliest first."""
        stale_after = self.rules.stale_after_ms
        while self.phase not in GAME_OVER:
            # The earliest of: the next official price, the feed going stale, a task.
            due = price_due = self.delay_line.next_due()
            freeze_due = None
            if not self.frozen and self.official_at is not None:
                freeze_due = self.official_at + stale_after + 1
                if due is None or freeze_due < due:
                    due = freeze_due
            if self._due:
                task_due = self._due[0][0]
                if due is None or task_due < due:
                    due = task_due
            if due is None or due > now:
                break
            self.now = max(self.now, due)
            if price_due == due:
                _, price = self.delay_line.pop()
                self._on_official(price, due)
            elif freeze_due == due:
                self._set_frozen(True, due)
            else:
                _, _, _, what, player, payload = heapq.heappop(self._due)
                self._on_due(what, player, payload, due)
        self.now = max(self.now, now)

    def _on_due(self, what: _Due, player: str | None, payload: Any, now: int) -> None:
        if what is _Due.END:
            self._settle(now, GamePhase.FINISHED, "time")
            return
        if what is _Due.REGEN:
            for p in self.players.values():
                if not p.abandoned:
                    self._add_charges(p, 1)
            self._schedule(now + self.rules.action_bar.regen_ms, _Due.REGEN, None)
            return
        assert player is not None
        p = self.players[player]
        if what is _Due.ORDER:
            (action,) = payload
            ack = self._check_order(p, now) or self._execute(p, action, now)
            if not ack.ok:
                self._emit(
                    "rejected",
                    {
                        "client_order_id": action.client_order_id,
                        "code": str(ack.code),
                        "message": ack.message,
                    },
                    to=p.id,
                )
        elif what is _Due.GRACE:
            if not p.connected and not p.abandoned and payload == p.disconnect_token:
                self._abandon(p, now)
        elif what is _Due.EXPIRE:
            effect, until = payload
            active = {
                "trade_delay": p.delayed_until,
                "shield": p.shield_until,
                "peek": p.peek_until,
            }[effect]
            if active == until:
                if effect == "peek":
                    self._peekers.discard(p.id)
                self._emit("effect", {"effect": effect, "player": p.id, "active": False, "at": now})

    # ------------------------------------------------------------------ feed
    def _on_price(self, price: Decimal, now: int) -> None:
        self.delay_line.push(now, price)
        for pid in sorted(self._peekers):
            self._emit("peek", {"price": fmt(price), "at": now}, to=pid)
        if self.rules.price_delay_ms == 0:
            self._advance(now)

    def _on_official(self, price: Decimal, now: int) -> None:
        self.official, self.official_at = price, now
        self.candles.add(now, price)
        if self.frozen:
            self._set_frozen(False, now)
        self._emit("tick", {"price": fmt(price), "at": now})
        prev = self._eval_price if self._eval_price is not None else price
        self._eval_price = price
        if self.phase is not GamePhase.LIVE or not len(self.book):
            return
        for fired in self.book.crossed(prev, price):
            p = self.players[fired.player]
            if p.position is not None:
                self._close(
                    p, p.position.qty, price, fired.trigger.reason, fired.trigger.reason, now
                )

    def _set_frozen(self, frozen: bool, now: int) -> None:
        self.frozen = frozen
        if self.phase is GamePhase.LIVE:
            if frozen:
                self._frozen_since = now
            elif self._frozen_since is not None:
                self.frozen_ms += now - self._frozen_since
                self._frozen_since = None
        self._emit("feed", {"frozen": frozen, "at": now})

    # ------------------------------------------------------------------ phases
    def _on_start(self, now: int) -> None:
        self.phase = GamePhase.LIVE
        self.started_at = now
        self.end_at = now + self.duration_ms
        if self.frozen:
            self._frozen_since = now
        self._schedule(self.end_at, _Due.END, None)
        self._schedule(now + self.rules.action_bar.regen_ms, _Due.REGEN, None)
        for p in self.players.values():
            p.peek.drain(now)
            p.reached_at = now
            if not p.connected:
                # Never showed up (or left while waiting): the grace runs from the start.
                self._schedule(
                    now + self.rules.disconnect.grace_ms, _Due.GRACE, p.id, p.disconnect_token
                )
        self._emit("phase", {"phase": "live", "at": now, "end_at": self.end_at})

    def _settle(self, now: int, final: GamePhase, reason: str) -> None:
        self.phase = GamePhase.SETTLING
        self._emit("phase", {"phase": "settling", "at": now})
        for _, _, _, what, player, payload in sorted(self._due):
            if what is _Due.ORDER and player is not None:
                self._emit(
                    "rejected",
                    {
                        "client_order_id": payload[0].client_order_id,
                        "code": str(Code.MATCH_OVER),
                        "message": "the match ended before the order executed",
                    },
                    to=player,
                )
        self._due.clear()
        if self._frozen_since is not None:
            self.frozen_ms += now - self._frozen_since
            self._frozen_since = None
        for p in sorted(self.players.values(), key=lambda s: s.id):
            if p.position is not None:
                assert self.official is not None
                self._close(p, p.position.qty, self.official, "settlement", "settlement", now)
        self._peekers.clear()
        self.phase = final
        self.ended_at = now
        self.end_reason = reason
        self._emit("phase", {"phase": str(final), "at": now, "reason": reason})
        self._emit("match_end", self.result())

    # ------------------------------------------------------------------ players
    def _on_connect(self, p: PlayerState, now: int) -> None:
        if p.connected:
            return
        if p.ever_connected and self.phase is GamePhase.LIVE and not p.restart_pending:
            p.reconnects += 1
        p.restart_pending = False
        p.connected = p.ever_connected = True
        p.disconnect_token += 1  # voids a pending grace timer
        self._emit("player", {"player": p.id, "status": "connected", "at": now})

    def _on_disconnect(self, p: PlayerState, now: int) -> None:
        p.connected = False
        p.disconnect_token += 1
        self._emit("player", {"player": p.id, "status": "disconnected", "at": now})
        if self.phase is not GamePhase.LIVE:
            return
        if p.reconnects >= self.rules.disconnect.max_reconnects and not p.restart_pending:
            self._abandon(p, now)
        else:
            self._schedule(
                now + self.rules.disconnect.grace_ms, _Due.GRACE, p.id, p.disconnect_token
            )

    def _abandon(self, p: PlayerState, now: int) -> None:
        """Out for good: close at market, freeze equity, cancel queued orders."""
        if p.position is not None and self.official is not None:
            self._close(p, p.position.qty, self.official, "abandon", "abandon", now)
        kept = [d for d in self._due if not (d[3] is _Due.ORDER and d[4] == p.id)]
        if len(kept) != len(self._due):
            self._due = kept
            heapq.heapify(self._due)
        self._peekers.discard(p.id)
        p.abandoned_at = now
        self._emit("player", {"player": p.id, "status": "abandoned", "at": now})

    def _add_charges(self, p: PlayerState, n: int) -> None:
        new = min(self.rules.action_bar.max_charges, p.charges + n)
        if new != p.charges:
            p.charges = new
            self._emit("charges", {"charges": new}, to=p.id)

    # ------------------------------------------------------------------ actions
    def _on_action(self, p: PlayerState, action: Action, now: int) -> Ack:
        if p.abandoned:
            return reject(Code.PLAYER_ABANDONED)
        if self.phase is not GamePhase.LIVE:
            return reject(Code.MATCH_NOT_LIVE)
        if isinstance(action, _ORDER_TYPES):
            problem = self._check_order(p, now)
            if problem is not None:
                return problem
            if p.delayed_until > now and p.shield_until <= now:
                execute_at = now + self.rules.trade_delay.delay_ms
                self._schedule(execute_at, _Due.ORDER, p.id, (action,))
                return accept(Code.DELAYED, execute_at=execute_at)
            return self._execute(p, action, now)
        if isinstance(action, SetStops):
            return self._set_stops(p, action)
        if isinstance(action, UseAbility):
            return self._use_ability(p, action, now)
        return self._peek(p, now)

    def _check_order(self, p: PlayerState, now: int) -> Ack | None:
        if self.phase is not GamePhase.LIVE:
            return reject(Code.MATCH_OVER)
        if p.abandoned:
            return reject(Code.PLAYER_ABANDONED)
        if self.frozen or self.official is None:
            return reject(Code.FEED_STALE)
        if p.cooldown_until > now:
            return reject(
                Code.COOLDOWN,
                f"orders are locked for {p.cooldown_until - now} ms after the last fill",
            )
        return None

    def _execute(self, p: PlayerState, action: OpenOrder | ClosePosition, now: int) -> Ack:
        assert self.official is not None
        price = self.official
        ref = action.client_order_id
        if isinstance(action, ClosePosition):
            pos = p.position
            if pos is None:
                return reject(Code.NO_POSITION)
            qty = (
                pos.qty
                if action.fraction == 1
                else floor_to(pos.qty * action.fraction, self.rules.qty_step)
            )
            if qty <= 0:
                return reject(Code.ORDER_TOO_SMALL)
            self._close(p, qty, price, "close", ref, now)
            return self._filled(p, now)
        return self._open(p, action, price, now)

    def _filled(self, p: PlayerState, now: int) -> Ack:
        p.trades += 1
        p.cooldown_until = now + self.rules.cooldown_ms
        return accept(cooldown_until=p.cooldown_until)

    def _stops_problem(
        self, side: int, price: Decimal, sl: Decimal | None, tp: Decimal | None
    ) -> str | None:
        step = self.rules.price_step
        for name, level in (("stop_loss", sl), ("take_profit", tp)):
            if level is not None and not on_grid(level, step):
                return f"{name} must be a multiple of the price step {fmt(step)}"
        below, above = (
            ("stop_loss", "take_profit") if side == LONG else ("take_profit", "stop_loss")
        )
        low, high = (sl, tp) if side == LONG else (tp, sl)
        if low is not None and low >= price:
            return f"{below} of a {side_name(side)} must be below the price {fmt(price)}"
        if high is not None and high <= price:
            return f"{above} of a {side_name(side)} must be above the price {fmt(price)}"
        return None

    def _open(self, p: PlayerState, order: OpenOrder, price: Decimal, now: int) -> Ack:
        r = self.rules
        if order.leverage > r.max_leverage:
            return reject(Code.INVALID_LEVERAGE, f"leverage must be 1..{r.max_leverage}")
        if order.margin < r.min_margin:
            return reject(Code.INVALID_MARGIN, f"margin must be at least {fmt(r.min_margin)}")
        side = LONG if order.side == "long" else SHORT
        qty = floor_to(order.margin * order.leverage / price, r.qty_step)
        if qty <= 0:
            return reject(Code.ORDER_TOO_SMALL)
        pos = p.position
        has_stops = order.stop_loss is not None or order.take_profit is not None
        if has_stops and pos is not None and pos.side != side and qty <= pos.qty:
            return reject(
                Code.INVALID_STOPS, "stop-loss/take-profit need an order that opens or flips"
            )
        problem = self._stops_problem(side, price, order.stop_loss, order.take_profit)
        if problem is not None:
            return reject(Code.INVALID_STOPS, problem)
        cash = self.ledger.balance(acct.cash(p.id))
        ref = order.client_order_id

        if pos is None or pos.side == side:
            fee = money(qty * price * r.taker_fee_rate)
            if order.margin + fee > cash:
                return reject(Code.INSUFFICIENT_BALANCE, self._short_of(order.margin + fee, cash))
            if pos is None:
                pos = Position(
                    p.id, side, ZERO, price, ZERO, Decimal(order.leverage), ZERO, None, None, now
                )
                p.position = pos
                entry = price
            else:
                entry = ((pos.qty * pos.entry + qty * price) / (pos.qty + qty)).quantize(ENTRY_STEP)
            self._lock(p, order.margin, fee, ref, now)
            pos.qty += qty
            pos.entry = entry
            pos.margin += order.margin
            if order.stop_loss is not None:
                pos.stop_loss = order.stop_loss
            if order.take_profit is not None:
                pos.take_profit = order.take_profit
            self._reprice(pos)
            self._fill_event(p, "open", side, qty, price, fee, ZERO, ref, now)
            return self._filled(p, now)

        # The opposite side: reduce, close, or close and open the rest the other way.
        if qty <= pos.qty:
            self._close(p, qty, price, "reduce", ref, now)
            return self._filled(p, now)
        rest = qty - pos.qty
        rest_margin = money(rest * price / order.leverage)
        if rest_margin < r.min_margin:
            return reject(
                Code.ORDER_TOO_SMALL,
                f"the part opening the other way needs at least {fmt(r.min_margin)} margin "
                f"(it would get {fmt(rest_margin)}); close the position instead",
            )
        rest_fee = money(rest * price * r.taker_fee_rate)
        after_close = cash + close_amounts(pos, pos.qty, price, r.taker_fee_rate).returned
        if rest_margin + rest_fee > after_close:
            return reject(
                Code.INSUFFICIENT_BALANCE, self._short_of(rest_margin + rest_fee, after_close)
            )
        self._close(p, pos.qty, price, "flip", ref, now)
        new = Position(
            p.id,
            side,
            rest,
            price,
            rest_margin,
            Decimal(order.leverage),
            ZERO,
            order.stop_loss,
            order.take_profit,
            now,
        )
        p.position = new
        self._lock(p, rest_margin, rest_fee, ref, now)
        self._reprice(new)
        self._fill_event(p, "open", side, rest, price, rest_fee, ZERO, ref, now)
        return self._filled(p, now)

    @staticmethod
    def _short_of(needed: Decimal, cash: Decimal) -> str:
        return f"needs {fmt(needed)} USDT for margin and fees, balance is {fmt(cash)}"

    def _lock(self, p: PlayerState, margin: Decimal, fee: Decimal, ref: str, now: int) -> None:
        self.ledger.transfer(
            now, acct.cash(p.id), acct.margin(p.id), margin, "margin_lock", p.id, ref
        )
        self.ledger.transfer(now, acct.cash(p.id), acct.FEES, fee, "fee", p.id, ref)
        p.fees += fee
        p.reached_at = now

    def _reprice(self, pos: Position) -> None:
        """Recompute the liquidation level and leverage after a change, and reindex."""
        r = self.rules
        pos.liquidation = liquidation_price(
            pos.side, pos.entry, pos.qty, pos.margin, r.maintenance_margin_rate, r.price_step
        )
        pos.leverage = (pos.qty * pos.entry / pos.margin).quantize(_LEVERAGE_STEP)
        pos.version += 1
        self.book.index(pos)

    def _close(
        self, p: PlayerState, qty: Decimal, price: Decimal, reason: str, ref: str, now: int
    ) -> None:
        pos = p.position
        assert pos is not None
        assert 0 < qty <= pos.qty
        if qty < pos.qty and money(pos.margin * qty / pos.qty) >= pos.margin:
            qty = pos.qty  # the rest would keep no margin: close it all rather than leave dust
        amounts = close_amounts(pos, qty, price, self.rules.taker_fee_rate)
        cash, margin = acct.cash(p.id), acct.margin(p.id)
        self.ledger.transfer(
            now, margin, cash, amounts.margin_released, "margin_release", p.id, ref
        )
        self.ledger.transfer(now, acct.HOUSE_PNL, cash, amounts.pnl, "pnl", p.id, ref)
        self.ledger.transfer(now, cash, acct.FEES, amounts.fee, "fee", p.id, ref)
        p.realized += amounts.pnl
        p.fees += amounts.fee
        p.reached_at = now
        pos.qty -= qty
        pos.margin -= amounts.margin_released
        side = pos.side
        if pos.qty == 0:
            p.position = None
            self.book.remove(p.id)
        else:
            self._reprice(pos)
        self._fill_event(
            p, reason, -side, qty, price, amounts.fee, amounts.pnl, ref, now, capped=amounts.capped
        )
        if amounts.pnl - amounts.fee > 0:
            self._add_charges(p, self.rules.action_bar.charge_per_profitable_close)

    def _fill_event(
        self,
        p: PlayerState,
        reason: str,
        side: int,
        qty: Decimal,
        price: Decimal,
        fee: Decimal,
        pnl: Decimal,
        ref: str,
        now: int,
        *,
        capped: bool = False,
    ) -> None:
        fill = {
            "player": p.id,
            "reason": reason,  # open | close | reduce | flip | stop_loss | take_profit | ...
            "side": "buy" if side == LONG else "sell",
            "qty": fmt(qty),
            "price": fmt(price),
            "fee": fmt(fee),
            "realized_pnl": fmt(pnl),
            "loss_capped": capped,
            "ref": ref,
            "at": now,
            "balance": fmt(self.ledger.balance(acct.cash(p.id))),
            "position": p.position.to_wire(price) if p.position and p.position.qty else None,
        }
        self.fills.append(fill)
        self._emit("fill", fill, to=p.id)

    def _set_stops(self, p: PlayerState, action: SetStops) -> Ack:
        pos = p.position
        if pos is None:
            return reject(Code.NO_POSITION)
        if self.frozen or self.official is None:
            return reject(Code.FEED_STALE)
        problem = self._stops_problem(pos.side, self.official, action.stop_loss, action.take_profit)
        if problem is not None:
            return reject(Code.INVALID_STOPS, problem)
        pos.stop_loss, pos.take_profit = action.stop_loss, action.take_profit
        pos.version += 1
        self.book.index(pos)
        return accept(position=pos.to_wire(self.official))

    def _use_ability(self, p: PlayerState, action: UseAbility, now: int) -> Ack:
        r = self.rules
        if action.ability == "shield":
            if p.charges < r.shield.cost:
                return reject(Code.NOT_ENOUGH_CHARGES)
            p.charges -= r.shield.cost
            p.shield_until = now + r.shield.duration_ms
            self._schedule(p.shield_until, _Due.EXPIRE, p.id, ("shield", p.shield_until))
            self._emit("charges", {"charges": p.charges}, to=p.id)
            self._emit(
                "effect",
                {
                    "effect": "shield",
                    "player": p.id,
                    "active": True,
                    "until": p.shield_until,
                    "at": now,
                },
            )
            return accept(until=p.shield_until)

        if p.charges < r.trade_delay.cost:
            return reject(Code.NOT_ENOUGH_CHARGES)
        target = self._resolve_target(p, action.target)
        if target is None:
            return reject(Code.INVALID_TARGET)
        if target.shield_until > now:
            return reject(
                Code.TARGET_SHIELDED, f"{target.id} is shielded until {target.shield_until}"
            )
        p.charges -= r.trade_delay.cost
        target.delayed_until = now + r.trade_delay.duration_ms
        target.delayed_by = p.id
        self._schedule(
            target.delayed_until, _Due.EXPIRE, target.id, ("trade_delay", target.delayed_until)
        )
        self._emit("charges", {"charges": p.charges}, to=p.id)
        self._emit(
            "effect",
            {
                "effect": "trade_delay",
                "player": target.id,
                "source": p.id,
                "active": True,
                "until": target.delayed_until,
                "at": now,
            },
        )
        return accept(target=target.id, until=target.delayed_until)

    def _resolve_target(self, p: PlayerState, target: str | None) -> PlayerState | None:
        """`leader` is the best-placed active opponent (so never the caster)."""
        if target == LEADER:
            for candidate, _ in self.standings():
                if candidate.id != p.id and not candidate.abandoned:
                    return candidate
            return None
        chosen = self.players.get(target or "")
        if chosen is None or chosen.id == p.id or chosen.abandoned:
            return None
        return chosen

    def _peek(self, p: PlayerState, now: int) -> Ack:
        if not p.peek.full(now):
            return reject(
                Code.PEEK_NOT_READY,
                f"the Peek Meter is at {p.peek.level(now)}/{p.peek.meter_max}; "
                f"full at {p.peek.ready_at(now)}",
            )
        p.peek.drain(now)
        p.peek_until = now + self.rules.peek.duration_ms
        self._peekers.add(p.id)
        self._schedule(p.peek_until, _Due.EXPIRE, p.id, ("peek", p.peek_until))
        self._emit(
            "effect",
            {"effect": "peek", "player": p.id, "active": True, "until": p.peek_until, "at": now},
            to=p.id,
        )
        live = self.delay_line.live()
        if live is not None:
            self._emit("peek", {"price": fmt(live), "at": now}, to=p.id)
        return accept(until=p.peek_until, price=fmt(live))

    # ------------------------------------------------------------------ output
    def _emit(self, kind: str, data: dict[str, Any], to: str | None = None) -> None:
        self._out.append(Event(kind, data, to))

    def _drain(self) -> list[Event]:
        out, self._out = self._out, []
        return out


def replay_entries(
    header: Mapping[str, Any], entries: Iterable[LogEntry], until: int | None = None
) -> tuple[Match, list[str]]:
    """Rebuild a match from its log; returns it and any action whose outcome differs.

    `until` lets time run on after the last entry (to the recorded end of the match),
    since what happens then (the final bell, expiring timers) is scheduled, not logged.
    """
    match = Match.from_header(header)
    mismatches: list[str] = []
    for entry in entries:
        ack = match.apply_entry(entry)
        if ack is not None and entry.data is not None:
            recorded = entry.data.get("outcome")
            if recorded != str(ack.code):
                mismatches.append(
                    f"entry {entry.seq} ({entry.player} {entry.data.get('client_order_id')}): "
                    f"recorded {recorded}, replay gives {ack.code}"
                )
    if until is not None:
        match.advance(until)
    return match, mismatches
