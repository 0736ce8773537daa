"""Fan-out that encodes an event once and writes the same frame to every socket.

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
"""

from __future__ import annotations

import json
import struct
from asyncio import Transport
from dataclasses import dataclass
from typing import Any

from engineio import packet as eio_packet

LOW_WATER_BYTES = 16 * 1024  # asyncio's and uvloop's default low-water mark


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


@dataclass
class Route:
    """How to reach one connected socket: its Engine.IO socket and, when the connection
    is a native WebSocket, the transport to write frames to."""

    eio_socket: Any
    transport: Transport | None


class FrameWriter:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}  # socket.io sid -> route
        self.direct = 0
        self.queued = 0

    def add(self, sid: str, eio_socket: Any, environ: dict[str, Any]) -> None:
        request = environ.get("aiohttp.request")
        transport = None
        if request is not None and request.headers.get("Upgrade", "").lower() == "websocket":
            transport = request.transport
        self.routes[sid] = Route(eio_socket, transport)

    def remove(self, sid: str) -> None:
        self.routes.pop(sid, None)

    def send(self, sids: list[str], namespace: str, event: str, data: Any) -> None:
        """Send one event to many sockets; never blocks, never reorders a client's packets."""
        text = socketio_event(namespace, event, data)
        frame = ws_text_frame(b"4" + text.encode())
        queued_packet = None
        for sid in sids:
            route = self.routes.get(sid)
            if route is None:
                continue
            sock = route.eio_socket
            if sock.closed:
                continue
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
                if queued_packet is None:
                    queued_packet = eio_packet.Packet(eio_packet.MESSAGE, data=text)
                sock.queue.put_nowait(queued_packet)
                self.queued += 1
