"""Userspace TCP forwarding: host ports and Service ClusterIPs.

A `Forwarder` listens on one address and, per accepted connection, dials the target
its resolver names at that moment (a pod address for a hostPort, a ready endpoint
for a Service), then splices bytes both ways with transport-level flow control
(the reading side pauses while the other side's write buffer is full). No copies
through streams, so many long-lived WebSocket connections cost little.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

Target = tuple[str, int]
Resolver = Callable[[], Target | None]


class _Half(asyncio.Protocol):
    """One side of a spliced connection; `peer` is the other side's half."""

    def __init__(self, on_close: Callable[[_Half], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self._pending: list[bytes] = []
        self._eof = False
        self._on_close = on_close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def attach(self, peer: _Half) -> None:
        self.peer = peer
        assert peer.transport is not None
        for chunk in self._pending:
            peer.transport.write(chunk)
        self._pending.clear()
        if self._eof:
            self._forward_eof()

    def data_received(self, data: bytes) -> None:
        if self.peer is None or self.peer.transport is None:
            self._pending.append(data)
            return
        self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self._eof = True
        if self.peer is not None:
            self._forward_eof()
        return True  # keep our write side open until the peer finishes

    def _forward_eof(self) -> None:
        assert self.peer is not None and self.peer.transport is not None
        if self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
        else:
            self.peer.transport.close()
        if self.peer._eof and self.transport is not None:
            self.transport.close()

    # Flow control: our transport's buffer is full -> stop reading from the peer.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()
        self._on_close(self)


class Forwarder:
    """Listen on host:port and forward each connection to `resolve()`'s target."""

    def __init__(self, host: str, port: int, resolve: Resolver, *, name: str = "") -> None:
        self.host = host
        self.port = port
        self.resolve = resolve
        self.name = name or f"{host}:{port}"
        self._server: asyncio.Server | None = None
        self._halves: set[_Half] = set()
        self.connections = 0

    async def start(self) -> None:
        """Listen; a port of 0 becomes the one the system chose."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._accepted, self.host, self.port, reuse_address=True, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def _accepted(self) -> _Half:
        half = _Half(self._halves.discard)
        self._halves.add(half)
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._dial(half)))
        return half

    async def _dial(self, client: _Half) -> None:
        if client.transport is None or client.transport.is_closing():
            return
        target = self.resolve()
        if target is None:
            log.info("proxy %s: no ready endpoint, closing connection", self.name)
            client.transport.close()
            return
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await asyncio.wait_for(
                loop.create_connection(lambda: _Half(self._halves.discard), *target), 5
            )
        except (TimeoutError, OSError) as exc:
            log.info("proxy %s: dial %s:%s failed: %s", self.name, *target, exc)
            client.transport.close()
            return
        self._halves.add(upstream)
        self.connections += 1
        if client.transport.is_closing():
            assert upstream.transport is not None
            upstream.transport.close()
            return
        upstream.attach(client)
        client.attach(upstream)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for half in list(self._halves):
            if half.transport is not None:
                half.transport.abort()
        self._halves.clear()
        if self._server is not None:
            await self._server.wait_closed()
