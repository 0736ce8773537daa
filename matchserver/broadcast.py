"""Fan-out that encodes an event once and writes the same frame to every socket,
with flow control for clients that fall behind.

python-socketio's room emit costs about 130 µs per recipient (a task per
recipient, a re-encode and a writer wake-up per client, see PERFORMANCE.md).
Here an event becomes one Socket.IO packet, one Engine.IO message and one
uncompressed WebSocket frame, and that frame is written straight to each
client's transport.

Ordering: a client's other packets (acks, connect) still travel through
Engine.IO's per-socket queue and writer task. A frame is written directly only
when nothing is queued or in flight there: the queue is empty and every packet
taken from it was marked done (the writer marks them done, then writes them
without yielding, since frames are uncompressed and the transport is not
paused). Otherwise the packet joins the queue behind what is already there, so
a client always receives packets in the order they were sent. A client whose
transport buffer is not drained below the low-water mark also goes through
the queue (so a paused writer is never overtaken).

Flow control (docs/matchserver.md, "Flow control"): each `tick` carries a `seq`
and clients send `tick_ack {seq}`. A client that is `window` or more ticks
behind its last acknowledgement is *behind*: its `tick` and `leaderboard`
events are held, one of each, the newest replacing the older, and written when
it acknowledges again (or just before any other event to it, so what it
receives is always the server's sequence with some ticks and boards left out,
never reordered). Every other event is written as before. (A spectators' writer
conflates its `spectate` frames the same way: `conflated`.) A client that has
never acknowledged is behind when its socket's own buffers back up (a late
signal: the kernel buffers are full by then). A client behind for longer than
`stuck_ms` is disconnected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from asyncio import Transport
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engineio import packet as eio_packet

from matchserver.metrics import MatchMetrics

log = logging.getLogger(__name__)

LOW_WATER_BYTES = 16 * 1024  # asyncio's and uvloop's default low-water mark
ACK_EVERY = 4  # clients acknowledge at least every this many ticks (the protocol's rule)
CONFLATED = ("tick", "leaderboard")  # the only events a client that is behind may miss
# A client that never acknowledged is behind once its own buffers hold this much.
LEGACY_BEHIND_BYTES = 64 * 1024  # asyncio's and uvloop's default high-water mark
LEGACY_BEHIND_PACKETS = 64


def ws_text_frame(payload: bytes) -> bytes:
    """An unmasked, final, text WebSocket frame (RFC 6455 5.2) carrying `payload`."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def socketio_event(namespace: str, event: str, data: Any) -> str:
    """The Socket.IO v5 EVENT packet text, as python-socketio would encode it."""
    return f"2{namespace}," + json.dumps([event, data], separators=(",", ":"))


@dataclass(frozen=True)
class FlowConfig:
    window: int = 8  # ticks written but not acknowledged before a client is behind
    stuck_ms: int = 10_000  # behind for this long without catching up: disconnected


@dataclass(slots=True)
class Held:
    """A conflated event waiting for its client: the newest of its kind."""

    text: str
    frame: bytes
    seq: int  # the tick's seq (0 for a leaderboard)


@dataclass(slots=True)
class Route:
    """How to reach one connected socket: its Engine.IO socket and, when the connection
    is a native WebSocket, the transport to write frames to; and its flow state."""

    eio_socket: Any
    transport: Transport | None
    acked: int | None = None  # newest tick seq acknowledged; None: never acknowledged
    sent: int = 0  # newest tick seq written
    held: dict[str, Held] = field(default_factory=dict)  # by event, oldest first
    behind_since: float | None = None  # monotonic seconds


class FrameWriter:
    def __init__(
        self,
        flow: FlowConfig | None = None,
        metrics: MatchMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        conflated: tuple[str, ...] = CONFLATED,
    ) -> None:
        self.flow = flow or FlowConfig()
        self.conflated = conflated  # the events a client that is behind may miss
        self.metrics = metrics
        self.clock = clock
        self.routes: dict[str, Route] = {}  # socket.io sid -> route
        self.direct = 0
        self.queued = 0
        self.seq = 0  # of the newest tick
        self.behind = 0  # clients behind now
        self._closing: set[asyncio.Task[Any]] = set()
        if metrics is not None:
            metrics.clients_behind.set_function(lambda: self.behind)

    def add(self, sid: str, eio_socket: Any, environ: dict[str, Any]) -> None:
        request = environ.get("aiohttp.request")
        transport = None
        if request is not None and request.headers.get("Upgrade", "").lower() == "websocket":
            transport = request.transport
        self.routes[sid] = Route(eio_socket, transport)

    def remove(self, sid: str) -> None:
        route = self.routes.pop(sid, None)
        if route is not None and route.behind_since is not None:
            self.behind -= 1

    # ----------------------------------------------------------------- sending
    def send(self, sids: list[str], namespace: str, event: str, data: Any) -> None:
        """Send one event to many sockets; never blocks, never reorders a client's packets.
        A `tick` gets the next `seq`; ticks and leaderboards are held for clients behind."""
        if event in self.conflated:
            self._send_latest(sids, namespace, event, data)
            return
        text = socketio_event(namespace, event, data)
        frame = ws_text_frame(b"4" + text.encode())
        for sid in sids:
            route = self.routes.get(sid)
            if route is None or route.eio_socket.closed:
                continue
            if route.held:
                self._release(route)
            self._write(route, text, frame)

    def _send_latest(self, sids: list[str], namespace: str, event: str, data: Any) -> None:
        seq = 0
        if event == "tick":
            self.seq += 1
            seq = self.seq
            data = {**data, "seq": seq}
        text = socketio_event(namespace, event, data)
        frame = ws_text_frame(b"4" + text.encode())
        window = self.flow.window
        stuck_s = self.flow.stuck_ms / 1000
        now = self.clock()
        dropped = 0
        stuck: list[tuple[str, Route]] = []
        for sid in sids:
            route = self.routes.get(sid)
            if route is None or route.eio_socket.closed:
                continue
            # A client that never acknowledged: its own buffers tell.
            acked = route.acked
            behind = self._backed_up(route) if acked is None else route.sent - acked >= window
            if behind:
                if route.held.pop(event, None) is not None:
                    dropped += 1
                route.held[event] = Held(text, frame, seq)
                if route.behind_since is None:
                    route.behind_since = now
                    self.behind += 1
                elif now - route.behind_since >= stuck_s:
                    stuck.append((sid, route))
                continue
            if route.behind_since is not None:  # caught up (a client that never acknowledged)
                route.behind_since = None
                self.behind -= 1
            if route.held:
                if route.held.pop(event, None) is not None:  # this one is newer
                    dropped += 1
                self._release(route)
            self._write(route, text, frame)
            if seq:
                route.sent = seq
        if dropped and self.metrics is not None:
            self.metrics.conflated.labels(event).inc(dropped)
        for sid, route in stuck:
            self._drop(sid, route)

    def _backed_up(self, route: Route) -> bool:
        transport = route.transport
        if transport is not None and transport.get_write_buffer_size() >= LEGACY_BEHIND_BYTES:
            return True
        return bool(route.eio_socket.queue.qsize() >= LEGACY_BEHIND_PACKETS)

    def _release(self, route: Route) -> None:
        """Write what was held for a client, in the order it was produced."""
        for held in route.held.values():
            self._write(route, held.text, held.frame)
            if held.seq:
                route.sent = held.seq
        route.held.clear()

    def _write(self, route: Route, text: str, frame: bytes) -> None:
        sock = route.eio_socket
        transport = route.transport
        queue = sock.queue
        if (
            transport is not None
            and queue.empty()
            and queue._unfinished_tasks == 0  # nothing taken but not yet written
            and not transport.is_closing()
            and transport.get_write_buffer_size() < LOW_WATER_BYTES
        ):
            transport.write(frame)
            self.direct += 1
        else:
            queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=text))
            self.queued += 1

    # ----------------------------------------------------------------- flow control
    def ack(self, sid: str, seq: int) -> None:
        """A client has handled every tick up to `seq`: write what was held for it once
        it is back within the window."""
        route = self.routes.get(sid)
        if route is None:
            return
        seq = min(seq, route.sent)  # nothing beyond what it was sent
        if route.acked is None or seq > route.acked:
            route.acked = seq
        if self.metrics is not None:
            self.metrics.tick_ack_lag.observe(route.sent - route.acked)
        if route.sent - route.acked >= self.flow.window:
            return
        if route.behind_since is not None:
            route.behind_since = None
            self.behind -= 1
        if route.held and not route.eio_socket.closed:
            self._release(route)

    def _drop(self, sid: str, route: Route) -> None:
        """Disconnect a client that stayed behind too long: close its connection at once
        (its buffers may be full, so no goodbye would reach it); the usual disconnect
        follows from the transport."""
        self.remove(sid)
        if self.metrics is not None:
            self.metrics.stuck_disconnects.inc()
        log.warning(
            "slow consumer disconnected",
            extra={"sid": sid, "behind_ms": self.flow.stuck_ms, "acked": route.acked},
        )
        if route.transport is not None:
            route.transport.abort()
        else:
            task = asyncio.ensure_future(route.eio_socket.close(wait=False, abort=True))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
