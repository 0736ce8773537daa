"""The `/match` Socket.IO namespace: thin handlers over the runners of the matches this
process hosts.

Connect with `auth: {token}` (a match token): the token's `mid` claim, read
unverified, only picks the match, whose verifier then checks the token for that
match (a dedicated server routes every connect to its one match, so a token for
another match is refused by the verifier as before; a pool server refuses an
unknown match with `unknown_match`). Every action is answered through the
Socket.IO acknowledgement with `{ok, code, message}`, an action sent with more
than one argument too (`invalid_action`). One socket per player: a newer
connection replaces the older one. Each match has its own emitter (its players'
sockets only) and frame writer.

Spectators (docs/matchserver.md, "Spectators") connect to the same namespace with a
spectator token (`typ` "spectate"): they get `spectate` frames of the match as it was
`delay_ms` ago and may call `spectate_sync`; an `action` or `sync` from one is answered
`spectator_read_only`.

Traced (tradearena.tracing): a connect may carry the player's journey in
`auth: {token, traceparent}`; the journey gets `player.connect` (the start of play), the
match's trace a `player.connection` span from connect to disconnect (linked to the
journey), and a sampled share of actions a `match.action` span under it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import socketio
from opentelemetry import trace
from opentelemetry.trace import Link, Span

from matchserver.broadcast import FrameWriter
from matchserver.engine.codes import Code
from matchserver.engine.events import reject
from matchserver.metrics import MatchMetrics
from matchserver.runner import SERVER_ERROR, MatchRunner
from matchserver.spectators import MatchSpectators
from tradearena import tracing
from tradearena.contracts.spectate import SPECTATOR_READ_ONLY
from tradearena.contracts.tracing import SOCKET_AUTH_FIELD
from tradearena.tokens import SPECTATE_TYP, TokenError, Verifier, claimed_match, claimed_typ

NAMESPACE = "/match"
UNKNOWN_MATCH = "unknown_match"
log = logging.getLogger(__name__)
_tracer = tracing.tracer("matchserver.handlers")


def action_span(
    sample: tracing.ActionSampler, connection: Span | None, payload: Any
) -> Span | None:
    """A `match.action` span (under the player's connection span) for a sampled share
    of actions; None for the others, at the cost of one sampling call."""
    if not sample():
        return None
    context = trace.set_span_in_context(connection) if connection is not None else None
    kind = payload.get("type") if isinstance(payload, dict) else None
    return _tracer.start_span(
        "match.action", context=context, attributes={"action.type": str(kind)}
    )


class SocketEmitter:
    """Routes one match's engine events to its players, through its frame writer."""

    def __init__(self, sio: socketio.AsyncServer, writer: FrameWriter | None = None) -> None:
        self.sio = sio
        self.sids: dict[str, str] = {}  # player -> sid
        self.writer = writer or FrameWriter()

    async def broadcast(self, kind: str, data: dict[str, Any]) -> None:
        self.writer.send(list(self.sids.values()), NAMESPACE, kind, data)

    async def to_player(self, player: str, kind: str, data: dict[str, Any]) -> None:
        sid = self.sids.get(player)
        if sid is not None:
            self.writer.send([sid], NAMESPACE, kind, data)


class Seat(Protocol):
    """One hosted match as the namespace sees it."""

    @property
    def runner(self) -> MatchRunner: ...

    @property
    def emitter(self) -> SocketEmitter: ...

    @property
    def spectators(self) -> MatchSpectators: ...


class Router(Protocol):
    def route(self, match_id: str | None) -> Seat | None:
        """The hosted match a token claiming `match_id` is checked against (None: none)."""

    def seated(self, seat: Seat, player: str, connected: bool) -> None:
        """A player's socket joined (True) or left (False) a hosted match."""


class MatchNamespace(socketio.AsyncNamespace):
    def __init__(self, router: Router, verifier: Verifier, metrics: MatchMetrics) -> None:
        super().__init__(NAMESPACE)
        self.router = router
        self.verifier = verifier
        self.metrics = metrics
        self.players: dict[str, tuple[Seat, str]] = {}  # sid -> (match, player)
        self.watching: dict[str, Seat] = {}  # sid -> the match a spectator watches
        self.spans: dict[str, Span] = {}  # sid -> its `player.connection` span (traced)
        self.sample_action = tracing.ActionSampler()
        self._tasks: set[asyncio.Task[None]] = set()
        self._fast_acks = metrics.tick_acks.labels("fast")
        self._dispatched_acks = metrics.tick_acks.labels("dispatch")

    def _refuse(self, code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
        self.metrics.connection_refusals.labels(code).inc()
        # Clients get {message, data: {code, message}} (JS: err.message, err.data.code).
        return socketio.exceptions.ConnectionRefusedError(
            message, {"code": code, "message": message}
        )

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not tracing.enabled():
            return await self._connect(sid, environ, auth)
        journey = auth.get(SOCKET_AUTH_FIELD) if isinstance(auth, dict) else None
        with _tracer.start_as_current_span(
            "player.connect", context=tracing.context_of(journey)
        ) as span:
            await self._connect(sid, environ, auth)
            if sid in self.watching:
                return None
            seat, player = self.players[sid]
            match_tp = seat.runner.traceparent
            span.set_attributes({"match.id": seat.runner.match.match_id, "player": player})
            link = tracing.link_to(match_tp)
            if link is not None:
                span.add_link(link.context)
            self.spans[sid] = _tracer.start_span(
                "player.connection",
                context=tracing.context_of(match_tp),
                links=[Link(span.get_span_context())],
                attributes={"match.id": seat.runner.match.match_id, "player": player},
            )
        return None

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise self._refuse("token_missing", "connect with auth: {token: <match token>}")
        claimed = claimed_match(token)
        seat = self.router.route(claimed)
        if seat is None and claimed is None:
            raise self._refuse("token_malformed", "not a match token")
        if seat is None:
            if claimed_typ(token) == SPECTATE_TYP:
                self.metrics.spectator_refusals.labels(UNKNOWN_MATCH).inc()
            raise self._refuse(UNKNOWN_MATCH, "this server does not host that match")
        runner, emitter = seat.runner, seat.emitter
        match_id = runner.match.match_id
        if claimed_typ(token) == SPECTATE_TYP:
            return self._connect_spectator(sid, seat, token, environ)
        try:
            claims = self.verifier.verify_match(token, match_id)
        except TokenError as exc:
            raise self._refuse(exc.code, exc.message) from None
        player = str(claims["sub"])
        if player not in runner.match.players:
            raise self._refuse("unknown_player", "this player is not in the match")
        previous = emitter.sids.get(player)
        if previous is not None and previous != sid:
            # Latest connection wins; the old socket is told why and closed. The player
            # never left, so the engine sees neither a disconnect nor a reconnect.
            self.players.pop(previous, None)
            emitter.writer.remove(previous)
            del emitter.sids[player]
            await self.emit("replaced", {"message": "connected from elsewhere"}, to=previous)
            await self.disconnect(previous)
        try:
            ack = await runner.connect(player)
        except Exception as exc:  # this match's fault, not the process's
            runner.report_fault(SERVER_ERROR, exc)
            raise self._refuse(SERVER_ERROR, "the match failed") from None
        if not ack.ok:
            raise self._refuse(str(ack.code), ack.message)
        self.players[sid] = (seat, player)
        emitter.sids[player] = sid
        self.router.seated(seat, player, True)
        log.info("player connected", extra={"match_id": match_id, "player": player})
        # Runs once this handler has returned and Socket.IO has queued its CONNECT packet:
        # from then on events for this socket are ordered after it.
        task = asyncio.create_task(self._connected(sid, environ))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _connect_spectator(self, sid: str, seat: Seat, token: str, environ: dict[str, Any]) -> None:
        """A spectator: refused when the server is loaded (before the token costs a
        signature check) or the match is full; else watching from now on."""
        spectators = seat.spectators
        match_id = seat.runner.match.match_id
        busy = spectators.gate.refusal()
        if busy is not None:
            raise self._refuse_spectator(busy, "the server is busy: try again later")
        try:
            claims = self.verifier.verify_spectator(token, match_id)
        except TokenError as exc:
            raise self._refuse_spectator(exc.code, exc.message) from None
        full = spectators.refusal()
        if full is not None:
            raise self._refuse_spectator(full, "no more spectators for this match")
        user = str(claims["sub"])
        self.watching[sid] = seat
        spectators.join(sid, user)
        log.info(
            "spectator connected",
            extra={"match_id": match_id, "user": user, "spectators": len(spectators)},
        )
        task = asyncio.create_task(self._spectator_route(sid, environ))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refuse_spectator(
        self, code: str, message: str
    ) -> socketio.exceptions.ConnectionRefusedError:
        self.metrics.spectator_refusals.labels(code).inc()
        return self._refuse(code, message)

    def _eio_socket(self, sid: str) -> Any:
        eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        return self.server.eio.sockets.get(eio_sid)

    async def _spectator_route(self, sid: str, environ: dict[str, Any]) -> None:
        """Once the CONNECT packet is queued, like a player's route (`_connected`)."""
        seat = self.watching.get(sid)
        eio_socket = self._eio_socket(sid)
        if seat is None or eio_socket is None:
            return
        seat.spectators.writer.add(sid, eio_socket, environ)

    async def _connected(self, sid: str, environ: dict[str, Any]) -> None:
        entry = self.players.get(sid)
        if entry is None:
            return  # already gone
        seat = entry[0]
        eio_socket = self._eio_socket(sid)
        if eio_socket is None:
            return
        seat.emitter.writer.add(sid, eio_socket, environ)
        try:
            await seat.runner.start_if_everyone_is_here()
        except Exception as exc:  # this match's fault, not the process's
            seat.runner.report_fault(SERVER_ERROR, exc)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        span = self.spans.pop(sid, None)
        if span is not None:
            span.set_attribute("disconnect.reason", str(reason))
            span.end()
        watched = self.watching.pop(sid, None)
        if watched is not None:
            user = watched.spectators.sids.get(sid)
            watched.spectators.leave(sid)
            log.info(
                "spectator disconnected",
                extra={
                    "match_id": watched.runner.match.match_id,
                    "user": user,
                    "reason": str(reason),
                    "spectators": len(watched.spectators),
                },
            )
            return
        entry = self.players.pop(sid, None)
        if entry is None:
            return
        seat, player = entry
        seat.emitter.writer.remove(sid)
        if seat.emitter.sids.get(player) == sid:
            del seat.emitter.sids[player]
            self.router.seated(seat, player, False)
            try:
                await seat.runner.disconnect(player)
            except Exception as exc:  # this match's fault, not the process's
                seat.runner.report_fault(SERVER_ERROR, exc)
        log.info(
            "player disconnected",
            extra={
                "match_id": seat.runner.match.match_id,
                "player": player,
                "reason": str(reason),
            },
        )

    async def on_action(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        if sid in self.watching:
            return _read_only()
        entry = self.players.get(sid)
        if entry is None:
            return {"ok": False, "code": "not_connected", "message": "connect first"}
        seat, player = entry
        if extra:  # answered like any malformed action, never a TypeError without an ack
            self.metrics.actions.labels(str(Code.INVALID_ACTION)).inc()
            return reject(Code.INVALID_ACTION, "an action is one argument: {type, ...}").to_wire()
        payload = data if data is not None else {}
        span = action_span(self.sample_action, self.spans.get(sid), payload)
        if span is None:
            return await self._submit(seat, player, payload)
        with trace.use_span(span, end_on_exit=True):
            reply = await self._submit(seat, player, payload)
            span.set_attribute("action.code", str(reply.get("code")))
            return reply

    async def _submit(self, seat: Seat, player: str, payload: Any) -> dict[str, Any]:
        try:
            ack = await seat.runner.submit(player, payload)
        except Exception as exc:  # this match's fault, not the process's
            seat.runner.report_fault(SERVER_ERROR, exc)
            return {"ok": False, "code": SERVER_ERROR, "message": "the match failed"}
        return ack.to_wire()

    async def on_sync(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        """Full state for (re)drawing the client: position, balance, effects, board."""
        if sid in self.watching:
            return _read_only()
        entry = self.players.get(sid)
        if entry is None:
            return {"ok": False, "code": "not_connected", "message": "connect first"}
        seat, player = entry
        try:
            state = seat.runner.state(player)
        except Exception as exc:  # this match's fault, not the process's
            seat.runner.report_fault(SERVER_ERROR, exc)
            return {"ok": False, "code": SERVER_ERROR, "message": "the match failed"}
        return {"ok": True, "code": "ok", "message": "state", "state": state}

    async def on_spectate_sync(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        """A spectator's full view: the delayed view plus its official candles."""
        seat = self.watching.get(sid)
        if seat is None:
            return {"ok": False, "code": "not_spectating", "message": "connect as a spectator"}
        try:
            state = await seat.spectators.sync()
        except Exception:  # the spectators' side, never the match's fault
            log.exception("spectate_sync failed", extra={"match_id": seat.runner.match.match_id})
            return {"ok": False, "code": SERVER_ERROR, "message": "no view"}
        return {"ok": True, "code": "ok", "message": "state", "state": state}

    async def on_tick_ack(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Flow control: this client has handled every tick up to `seq` (docs/matchserver.md).
        Sent without a callback as a rule; one that asks gets the usual answer."""
        seq = data.get("seq") if isinstance(data, dict) else None
        if type(seq) is not int or seq < 0:
            return {
                "ok": False,
                "code": "invalid_ack",
                "message": "send tick_ack {seq: <tick seq>}",
            }
        self._dispatched_acks.inc()
        self._ack(sid, seq)
        return {"ok": True, "code": "ok", "message": "acknowledged"}

    def fast_tick_ack(self, sid: str, seq: int) -> None:
        """`tick_ack {seq}` sent without a callback (how clients send it), taken before
        Socket.IO's dispatch (`GuardedServer.fast_event`): no task, no decode. Any other
        form (a callback, a malformed seq) comes through `on_tick_ack`."""
        self._fast_acks.inc()
        self._ack(sid, seq)

    def _ack(self, sid: str, seq: int) -> None:
        entry = self.players.get(sid)
        if entry is not None:
            entry[0].emitter.writer.ack(sid, seq)

    def sids_of(self, seat: Seat) -> list[str]:
        """Every socket of a match: its players' and its spectators'."""
        players = [sid for sid, (s, _) in self.players.items() if s is seat]
        return players + [sid for sid, s in self.watching.items() if s is seat]


def _read_only() -> dict[str, Any]:
    return {"ok": False, "code": SPECTATOR_READ_ONLY, "message": "spectators only watch"}
