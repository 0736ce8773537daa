"""The node's userspace TCP forwarder on loopback sockets: bytes both ways, half-close,
many concurrent connections, and a connection refused when there is no endpoint."""

from __future__ import annotations

import asyncio

from tradearena.testing.node.proxy import Forwarder


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write(b"<eof>")  # answers after the client half-closed
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    return server, port


async def _forwarder(target: tuple[str, int] | None) -> Forwarder:
    forwarder = Forwarder("127.0.0.1", 0, lambda: target)
    await forwarder.start()
    assert forwarder.port
    return forwarder


async def test_many_connections_round_trip_and_half_close() -> None:
    server, port = await _echo_server()
    forwarder = await _forwarder(("127.0.0.1", port))

    async def client(i: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", forwarder.port)
        payload = f"hello {i} ".encode() * 2000  # larger than one read
        writer.write(payload)
        await writer.drain()
        got = await reader.readexactly(len(payload))
        writer.write_eof()
        tail = await reader.read()
        writer.close()
        assert got == payload
        return tail

    try:
        tails = await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(200))), 30)
        assert tails == [b"<eof>"] * 200
        assert forwarder.connections == 200
    finally:
        await forwarder.close()
        server.close()
        await server.wait_closed()


async def test_no_endpoint_closes_the_connection() -> None:
    forwarder = await _forwarder(None)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", forwarder.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await forwarder.close()


async def test_close_drops_open_connections() -> None:
    server, port = await _echo_server()
    forwarder = await _forwarder(("127.0.0.1", port))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", forwarder.port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        await forwarder.close()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
