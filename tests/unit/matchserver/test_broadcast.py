"""The frame writer: one encoded frame for everyone, and never a reordered packet."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import socketio
from aiohttp import web

from matchserver.broadcast import FrameWriter, socketio_event, ws_text_frame
from tradearena.launcher.localservices import free_port


def decode_frame(frame: bytes) -> tuple[int, bytes]:
    b0, b1 = frame[0], frame[1]
    n, offset = b1 & 0x7F, 2
    if n == 126:
        (n,), offset = struct.unpack("!H", frame[2:4]), 4
    elif n == 127:
        (n,), offset = struct.unpack("!Q", frame[2:10]), 10
    assert b1 & 0x80 == 0, "server frames are never masked"
    return b0, frame[offset : offset + n]


def test_frames_of_every_length_class_decode() -> None:
    for size in (0, 125, 126, 65535, 65536, 200_000):
        payload = b"x" * size
        b0, body = decode_frame(ws_text_frame(payload))
        assert b0 == 0x81  # FIN + text
        assert body == payload


def test_event_text_matches_python_socketio_encoding() -> None:
    packet = socketio.packet.Packet(
        socketio.packet.EVENT, namespace="/match", data=["tick", {"price": "1.5", "at": 7}]
    )
    assert json.loads(packet.encode()[len("2/match,") :]) == json.loads(
        socketio_event("/match", "tick", {"price": "1.5", "at": 7})[len("2/match,") :]
    )
    assert socketio_event("/match", "x", 1).startswith("2/match,")


async def test_direct_and_queued_packets_arrive_in_send_order() -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp", logger=False)
    app = web.Application()
    sio.attach(app)
    writer = FrameWriter()
    connected: asyncio.Queue[str] = asyncio.Queue()

    @sio.on("connect", namespace="/match")
    async def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        async def register() -> None:
            eio_sid = sio.manager.eio_sid_from_sid(sid, "/match")
            writer.add(sid, sio.eio.sockets[eio_sid], environ)
            await connected.put(sid)

        asyncio.get_running_loop().create_task(register())

    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = socketio.AsyncClient(reconnection=False)
    received: list[int] = []
    done = asyncio.Event()
    total = 640

    @client.on("seq", namespace="/match")
    async def on_seq(n: int) -> None:
        received.append(n)
        done.set()

    try:
        await client.connect(
            f"http://127.0.0.1:{port}", namespaces=["/match"], transports=["websocket"]
        )
        sid = await asyncio.wait_for(connected.get(), 10)
        n = 0
        while n < total:
            if n % 30 == 0:
                # Let the writer task drain the queue: the next sends can go direct.
                await asyncio.sleep(0.02)
                writer.send([sid], "/match", "seq", n)
                writer.send([sid], "/match", "seq", n + 1)
                n += 2
            # The stock queued path, then direct attempts while that packet is in flight.
            await sio.emit("seq", n, to=sid, namespace="/match")
            writer.send([sid], "/match", "seq", n + 1)
            writer.send([sid], "/match", "seq", n + 2)
            n += 3

        async def all_arrived() -> None:
            while len(received) < n:
                done.clear()
                await done.wait()

        await asyncio.wait_for(all_arrived(), 20)
        assert received == list(range(n))
        assert writer.direct > 0
        assert writer.queued > 0  # both paths were really used
    finally:
        await client.disconnect()
        await runner.cleanup()
