"""Which client event packets reach a handler (tradearena.sockets.event_refusal)."""

from __future__ import annotations

from typing import Any

import pytest

from tradearena.sockets import RESERVED_EVENTS, event_refusal


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
