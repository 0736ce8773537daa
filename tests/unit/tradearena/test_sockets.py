"""Which client event packets reach a handler (tradearena.sockets: event_refusal, fast events)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tradearena.sockets import RESERVED_EVENTS, GuardedServer, event_refusal


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_reserved_names_are_refused(name: str) -> None:
    assert event_refusal([name]) == "reserved_event"
    assert event_refusal([name, {}, {"token": "t"}]) == "reserved_event"


@pytest.mark.parametrize("data", [[], None, {"0": "action"}, [1], [None, {}], [["action"]]])
def test_events_without_a_string_name_are_refused(data: Any) -> None:
    assert event_refusal(data) == "invalid_event"


@pytest.mark.parametrize("name", ["action", "sync", "queue_status", "Connect", "message"])
def test_application_events_pass(name: str) -> None:
    assert event_refusal([name, {}]) is None


# Fast events: the Engine.IO message text a client sends, offered to the server's
# Engine.IO layer as its reader does (`_trigger_event("message", eio_sid, text)`).


class FastHarness:
    def __init__(self) -> None:
        self.sio = GuardedServer(async_mode="aiohttp", on_refused=lambda code: None)
        self.fast: list[tuple[str, int]] = []
        self.dispatched: list[tuple[str, Any]] = []
        self.sio.fast_event("/match", "tick_ack", "seq", lambda sid, n: self.fast.append((sid, n)))

        async def usual(eio_sid: str, data: Any) -> None:
            self.dispatched.append((eio_sid, data))

        self.sio.eio.handlers["message"] = usual  # the usual dispatch (_handle_eio_message)

    async def receive(self, text: Any, eio_sid: str = "e1") -> None:
        await self.sio.eio._trigger_event("message", eio_sid, text, run_async=False)


async def connected_harness() -> tuple[FastHarness, str]:
    harness = FastHarness()
    sid = await harness.sio.manager.connect("e1", "/match")
    return harness, sid


def test_a_tick_ack_as_the_stock_js_client_sends_it_takes_the_fast_path() -> None:
    async def go() -> None:
        harness, sid = await connected_harness()
        # socket.io-client 4: emit("tick_ack", {seq}) without a callback
        await harness.receive('2/match,["tick_ack",{"seq":12}]')
        await harness.receive('2/match,["tick_ack",{"seq":0}]')
        assert harness.fast == [(sid, 12), (sid, 0)]
        assert harness.dispatched == []

    asyncio.run(go())


@pytest.mark.parametrize(
    "text",
    [
        '2/match,3["tick_ack",{"seq":12}]',  # asks for an acknowledgement
        '2/match,["tick_ack",{"seq":"12"}]',
        '2/match,["tick_ack",{"seq":-1}]',
        '2/match,["tick_ack",{"seq":1.5}]',
        '2/match,["tick_ack",{"seq":1e3}]',
        '2/match,["tick_ack",{"seq":012}]',
        '2/match,["tick_ack",{"seq":true}]',
        '2/match,["tick_ack",{"seq":99999999999999999999}]',
        '2/match,["tick_ack",{"seq":12,"x":1}]',
        '2/match,["tick_ack",{"seq": 12}]',
        '2/match,["tick_ack",{"seq":12},1]',
        '2/match,["tick_ack",{"seq":12}',
        '2/match,["tick_ack"]',
        '2/match,["tick_ack",null]',
        '2["tick_ack",{"seq":12}]',  # another namespace
        '2/match,["action",{"seq":12}]',
        '0/match,{"token":"t"}',
        b'2/match,["tick_ack",{"seq":12}]',
    ],
)
def test_anything_but_the_exact_form_goes_through_the_usual_dispatch(text: Any) -> None:
    async def go() -> None:
        harness, _ = await connected_harness()
        await harness.receive(text)
        assert harness.fast == []
        assert harness.dispatched == [("e1", text)]

    asyncio.run(go())


def test_a_fast_event_from_a_socket_not_in_the_namespace_is_left_to_the_usual_path() -> None:
    async def go() -> None:
        harness, _ = await connected_harness()
        await harness.receive('2/match,["tick_ack",{"seq":12}]', eio_sid="e2")
        assert harness.fast == []
        assert harness.dispatched == [("e2", '2/match,["tick_ack",{"seq":12}]')]

    asyncio.run(go())


def test_reserved_names_cannot_be_fast_events() -> None:
    with pytest.raises(ValueError, match="reserved"):
        FastHarness().sio.fast_event("/match", "disconnect", "seq", lambda sid, n: None)
