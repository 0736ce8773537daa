"""Hostile bytes for tests: undecodable Socket.IO / Engine.IO packets over a real
websocket and an HTTP request with an oversized bearer header, over a raw socket."""

from __future__ import annotations

import asyncio

import aiohttp

# Socket.IO packets inside well-formed Engine.IO messages: the connection survives each.
BAD_SOCKETIO_PACKETS = (
    '42{ns},["action",{{',  # truncated JSON
    "42{ns}," + "[" * 5000,  # nested deeper than the JSON decoder's recursion limit
    "4x",  # not a packet type
)
# Engine.IO packets the transport cannot decode: each is sent on a connection of its own.
BAD_ENGINEIO_PACKETS = ("x1", "6" + "[" * 5000)


async def send_bad_packets(url: str, namespace: str) -> int:
    """Sends every bad packet once; returns how many were sent."""
    ws_url = f"{url}/socket.io/?EIO=4&transport=websocket"
    sent = 0
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(ws_url) as ws:
            opened = await ws.receive_str(timeout=10)
            assert opened.startswith("0{"), opened
            for packet in BAD_SOCKETIO_PACKETS:
                await ws.send_str(packet.format(ns=f"{namespace},") if "{ns}" in packet else packet)
                sent += 1
            await ws.send_str("3")  # a pong: answered by nothing, proves the socket is open
        # The server may not answer our close after such a packet: do not wait long for it.
        quick_close = aiohttp.ClientWSTimeout(ws_close=0.2)
        for packet in BAD_ENGINEIO_PACKETS:
            async with http.ws_connect(ws_url, timeout=quick_close) as ws:
                await ws.receive_str(timeout=10)
                await ws.send_str(packet)
                sent += 1
    return sent


async def oversized_bearer_request(host: str, port: int, secret: str) -> tuple[int, bytes]:
    """A GET whose Authorization header is over aiohttp's 8190-byte line limit;
    returns the reply's status and status line."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {secret}\r\n\r\n".encode()
        )
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    parts = line.split()
    return (int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0), line
