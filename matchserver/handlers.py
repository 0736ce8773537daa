"""The `/match` Socket.IO namespace: thin handlers over the runner.

Connect with `auth: {token}` (a match token for this match); every action is
answered through the Socket.IO acknowledgement with `{ok, code, message}`, an
action sent with more than one argument too (`invalid_action`).
One socket per player: a newer connection replaces the older one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio

from matchserver.broadcast import FrameWriter
from matchserver.engine.codes import Code
from matchserver.engine.events import reject
from matchserver.metrics import MatchMetrics
from matchserver.runner import MatchRunner
from tradearena.tokens import TokenError, Verifier

NAMESPACE = "/match"
log = logging.getLogger(__name__)


class SocketEmitter:
    """Routes engine events to everyone or to one player, through the frame writer."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        self.sids: dict[str, str] = {}  # player -> sid
        self.writer = FrameWriter()

    async def broadcast(self, kind: str, data: dict[str, Any]) -> None:
        self.writer.send(list(self.sids.values()), NAMESPACE, kind, data)

    async def to_player(self, player: str, kind: str, data: dict[str, Any]) -> None:
        sid = self.sids.get(player)
        if sid is not None:
            self.writer.send([sid], NAMESPACE, kind, data)


class MatchNamespace(socketio.AsyncNamespace):
    def __init__(
        self,
        runner: MatchRunner,
        emitter: SocketEmitter,
        verifier: Verifier,
        metrics: MatchMetrics,
    ) -> None:
        super().__init__(NAMESPACE)
        self.runner = runner
        self.emitter = emitter
        self.verifier = verifier
        self.metrics = metrics
        self.players: dict[str, str] = {}  # sid -> player
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
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise self._refuse("token_missing", "connect with auth: {token: <match token>}")
        match_id = self.runner.match.match_id
        try:
            claims = self.verifier.verify_match(token, match_id)
        except TokenError as exc:
            raise self._refuse(exc.code, exc.message) from None
        player = str(claims["sub"])
        if player not in self.runner.match.players:
            raise self._refuse("unknown_player", "this player is not in the match")
        previous = self.emitter.sids.get(player)
        if previous is not None and previous != sid:
            # Latest connection wins; the old socket is told why and closed. The player
            # never left, so the engine sees neither a disconnect nor a reconnect.
            self.players.pop(previous, None)
            del self.emitter.sids[player]
            await self.emit("replaced", {"message": "connected from elsewhere"}, to=previous)
            await self.disconnect(previous)
        ack = await self.runner.connect(player)
        if not ack.ok:
            raise self._refuse(str(ack.code), ack.message)
        self.players[sid] = player
        self.emitter.sids[player] = sid
        log.info("player connected", extra={"match_id": match_id, "player": player})
        # Runs once this handler has returned and Socket.IO has queued its CONNECT packet:
        # from then on events for this socket are ordered after it.
        task = asyncio.create_task(self._connected(sid, environ))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connected(self, sid: str, environ: dict[str, Any]) -> None:
        if self.players.get(sid) is None:
            return  # already gone
        eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        eio_socket = self.server.eio.sockets.get(eio_sid)
        if eio_socket is None:
            return
        self.emitter.writer.add(sid, eio_socket, environ)
        await self.runner.start_if_everyone_is_here()

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.emitter.writer.remove(sid)
        player = self.players.pop(sid, None)
        if player is None:
            return
        if self.emitter.sids.get(player) == sid:
            del self.emitter.sids[player]
            await self.runner.disconnect(player)
        log.info(
            "player disconnected",
            extra={"match_id": self.runner.match.match_id, "player": player, "reason": str(reason)},
        )

    async def on_action(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        player = self.players.get(sid)
        if player is None:
            return {"ok": False, "code": "not_connected", "message": "connect first"}
        if extra:  # answered like any malformed action, never a TypeError without an ack
            self.metrics.actions.labels(str(Code.INVALID_ACTION)).inc()
            return reject(Code.INVALID_ACTION, "an action is one argument: {type, ...}").to_wire()
        ack = await self.runner.submit(player, data if data is not None else {})
        return ack.to_wire()

    async def on_sync(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        """Full state for (re)drawing the client: position, balance, effects, board."""
        player = self.players.get(sid)
        if player is None:
            return {"ok": False, "code": "not_connected", "message": "connect first"}
        return {"ok": True, "code": "ok", "message": "state", "state": self.runner.state(player)}

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
        self.emitter.writer.ack(sid, seq)
        return {"ok": True, "code": "ok", "message": "acknowledged"}

    def fast_tick_ack(self, sid: str, seq: int) -> None:
        """`tick_ack {seq}` sent without a callback (how clients send it), taken before
        Socket.IO's dispatch (`GuardedServer.fast_event`): no task, no decode. Any other
        form (a callback, a malformed seq) comes through `on_tick_ack`."""
        self._fast_acks.inc()
        self.emitter.writer.ack(sid, seq)
