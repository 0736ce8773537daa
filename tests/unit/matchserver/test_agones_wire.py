"""Reading the Agones SDK gateway's JSON: int64 as strings or numbers, zero fields left out."""

from __future__ import annotations

from matchserver.agones import (
    AgonesError,
    AgonesUnavailableError,
    _error_message,
    counter_of,
    list_of,
    state_of,
)
from tradearena.contracts.agones import player_entry


def test_counters_and_lists_read_every_int64_form() -> None:
    assert counter_of({"count": "3", "capacity": "8"}, "matches") == {
        "name": "matches",
        "count": 3,
        "capacity": 8,
    }
    assert counter_of({"count": 3, "capacity": 8}, "matches")["capacity"] == 8
    # A gateway that leaves zero values out.
    assert counter_of({"capacity": "8"}, "matches")["count"] == 0
    assert list_of({"capacity": "4"}, "players") == {"name": "players", "capacity": 4, "values": []}
    assert list_of({"values": ["m-1/a"]}, "players")["values"] == ["m-1/a"]


def test_state_and_errors() -> None:
    assert state_of({"status": {"state": "Allocated"}}) == "Allocated"
    assert state_of({}) == ""
    assert _error_message('{"code": 2, "message": "counter not found: x", "details": []}') == (
        "counter not found: x"
    )
    assert _error_message('{"error": {"code": 14, "message": "gone"}}') == "gone"
    assert _error_message("upstream connect error") == "upstream connect error"
    refused = AgonesError("list_add", 500, "out of range. No available capacity.")
    assert "list_add" in str(refused) and "500" in str(refused)
    assert isinstance(AgonesUnavailableError("ready", None, "refused"), AgonesError)


def test_player_entry() -> None:
    assert player_entry("m-1", "alice") == "m-1/alice"
