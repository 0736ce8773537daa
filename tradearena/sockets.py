"""A Socket.IO server that keeps client packets away from the transport's own events.

python-socketio hands a client's EVENT packet to whatever handler bears its name:
`on_<name>` on a namespace class, or a handler registered with `sio.on(name)`. So a
client that emits an event called `connect` or `disconnect` reaches the very
handlers that the server calls when a socket really connects or goes away.
`GuardedServer` checks each client event packet before it is dispatched: an event
whose name is reserved (the transport's events and the names the JS client keeps
for itself) or is not a string reaches no handler. The refusal is counted through
`on_refused(code)` and, when the client asked for an acknowledgement, answered with
the same shape as every other refusal: `{ok: false, code, message}`.

Codes: `reserved_event` (a reserved name), `invalid_event` (no name, or not a string).

Fast events. python-socketio dispatches each client event through two tasks (one
made by Engine.IO per message, one by Socket.IO per event) and two decodes, about
50-70 µs of server CPU. An event sent very often with one small integer argument
(the match server's `tick_ack`) can skip all of that: `fast_event` registers a
synchronous handler that gets the Engine.IO message text first, in the
connection's reader, before any task exists. Only the exact text
`2<namespace>,["<event>",{"<key>":<non-negative integer>}]` (no acknowledgement id,
no binary attachments, from a socket connected to that namespace) takes this path;
anything else, malformed input included, goes through the usual dispatch. A
client's messages are still handled in the order they arrive: the fast path runs
at once, where the usual path would have started a task.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import engineio
import socketio
from socketio import packet

log = logging.getLogger("tradearena.sockets")

# The server's own events, and the names socket.io clients keep for themselves
# (a client cannot receive them as events either).
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

REFUSALS = {
    "reserved_event": "this event name is reserved for the transport",
    "invalid_event": "an event needs a name (a string)",
}


def event_refusal(data: Any) -> str | None:
    """The refusal code for a client EVENT packet's payload, or None to dispatch it."""
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        return "invalid_event"
    if data[0] in RESERVED_EVENTS:
        return "reserved_event"
    return None


class FastEngineIO(engineio.AsyncServer):  # type: ignore[misc]  # engineio is untyped
    """Engine.IO server that offers each client message to `fast_message` first, in the
    connection's reader, before it makes a task of it (`_trigger_event`, engineio 4)."""

    fast_message: Callable[[str, Any], bool] | None = None

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        fast = self.fast_message
        if event == "message" and fast is not None and fast(*args):
            return None
        return await super()._trigger_event(event, *args, **kwargs)


@dataclass(frozen=True, slots=True)
class FastEvent:
    prefix: str  # the Socket.IO packet text up to the argument
    namespace: str
    pattern: re.Pattern[str]  # the whole packet text; group 1: the integer
    handler: Callable[[str, int], None]  # (socket.io sid, integer)


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]  # socketio is untyped
    """`socketio.AsyncServer` that refuses client events under reserved names and
    handles registered fast events before the usual dispatch."""

    def __init__(self, *args: Any, on_refused: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_refused = on_refused
        self._logged_at = float("-inf")
        self._unlogged = 0
        self._fast: list[FastEvent] = []
        self._fast_failed_at = float("-inf")
        self.eio.fast_message = self._fast_message

    def _engineio_server_class(self) -> type[FastEngineIO]:
        return FastEngineIO

    def fast_event(
        self, namespace: str, event: str, key: str, handler: Callable[[str, int], None]
    ) -> None:
        """Handle `event {key: n}` (n a non-negative integer, no acknowledgement asked)
        on `namespace` with `handler(sid, n)`, synchronously and before the usual
        dispatch; every other form of the event still reaches its usual handler."""
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event} is reserved")
        head = "2" if namespace == "/" else f"2{namespace},"
        prefix = head + json.dumps([event])[:-1] + ","
        text = re.escape(prefix + "{" + json.dumps(key) + ":")
        pattern = re.compile(text + r"(0|[1-9][0-9]{0,17})\}\]")  # below 2**63
        self._fast.append(FastEvent(prefix, namespace, pattern, handler))

    def _fast_message(self, eio_sid: str, data: Any) -> bool:
        """True when `data` (an Engine.IO message) was a fast event and is handled."""
        if type(data) is not str:
            return False
        for fast in self._fast:
            if not data.startswith(fast.prefix):
                continue
            match = fast.pattern.fullmatch(data)
            if match is None or eio_sid in self._binary_packet:
                return False
            sid = self.manager.sid_from_eio_sid(eio_sid, fast.namespace)
            if sid is None or not self.manager.is_connected(sid, fast.namespace):
                return False  # the usual path says why, as for any event
            try:
                fast.handler(sid, int(match.group(1)))
            except Exception:  # the reader must live on; at most one traceback a second
                now = time.monotonic()
                if now - self._fast_failed_at >= 1.0:
                    self._fast_failed_at = now
                    log.exception("fast event handler failed", extra={"sid": sid})
            return True
        return False

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: Any
    ) -> None:
        # The one entry of client EVENT packets (python-socketio 5); the server's own
        # connect and disconnect go through `_handle_connect` / `_handle_disconnect`.
        code = event_refusal(data)
        if code is None:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return
        self._on_refused(code)
        self._log(code, data[0] if code == "reserved_event" else None, sid)
        if id is not None:
            reply = {"ok": False, "code": code, "message": REFUSALS[code]}
            await self._send_packet(
                eio_sid, self.packet_class(packet.ACK, namespace=namespace, id=id, data=[reply])
            )

    def _log(self, code: str, event: str | None, sid: str) -> None:
        """At most one line a second (the counter has every refusal): a client sending
        thousands of them must not flood the log."""
        now = time.monotonic()
        if now - self._logged_at < 1.0:
            self._unlogged += 1
            return
        extra = {"code": code, "event": event, "sid": sid, "unlogged_before": self._unlogged}
        log.warning("client event refused", extra=extra)
        self._logged_at, self._unlogged = now, 0
