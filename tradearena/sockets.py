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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

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


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]  # socketio is untyped
    """`socketio.AsyncServer` that refuses client events under reserved names."""

    def __init__(self, *args: Any, on_refused: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_refused = on_refused
        self._logged_at = float("-inf")
        self._unlogged = 0

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
