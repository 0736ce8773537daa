"""A match server is either dedicated (its match in its settings) or a pool server
(server_id and capacity); the matches it builds from assignments."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from matchserver.agones_pool import PoolReport
from matchserver.host import dedicated_assignment, history_ms, new_match
from matchserver.settings import MatchServerSettings
from tradearena.contracts.pool import Assignment
from tradearena.modes import load_catalogue


def test_a_pool_server_needs_no_match_and_a_dedicated_one_no_pool() -> None:
    pool = MatchServerSettings(server_id="p-1", capacity=8)
    assert pool.pooled and pool.match_id is None and pool.players == ()
    one = MatchServerSettings(match_id="m-1", players=("alice", "bob"))
    assert not one.pooled
    assert dedicated_assignment(one) == Assignment(
        "m-1", "standard", "blitz", 0, ("alice", "bob"), "BTCUSDT", 0
    )


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({}, "set match_id and players"),
        ({"match_id": "m-1"}, "set match_id and players"),
        ({"server_id": "p-1"}, "needs both server_id and capacity"),
        ({"capacity": 3}, "needs both server_id and capacity"),
        ({"server_id": "p-1", "capacity": 3, "match_id": "m-1"}, "takes no match_id"),
        ({"server_id": "p-1", "capacity": 3, "players": ("a",)}, "takes no match_id"),
        ({"server_id": "p-1", "capacity": 0}, "capacity"),
        ({"server_id": "P 1", "capacity": 2}, "server_id"),
    ],
)
def test_neither_or_both_roles_is_a_bad_setting(given: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        MatchServerSettings(**given)


def test_a_match_from_its_assignment() -> None:
    catalogue = load_catalogue(None)
    a = Assignment("m-9", "duel", "blitz", 0, ("alice", "bob"), "BTCUSDT", 1)
    match = new_match(catalogue, a, now=1_000_000)
    assert match.match_id == "m-9" and list(match.players) == ["alice", "bob"]
    assert match.header()["duration_ms"] == catalogue.duration_ms("blitz")
    delay = catalogue.mode("duel").rules.price_delay_ms
    assert match.created_at == 1_000_000 - delay - 1000
    too_many = Assignment("m-9", "duel", "blitz", 0, ("a", "b", "c"), "BTCUSDT", 1)
    with pytest.raises(ValueError, match="at most 2"):
        new_match(catalogue, too_many, now=0)
    with pytest.raises(KeyError, match="unknown mode"):
        new_match(catalogue, Assignment("m", "nope", "blitz", 0, ("a",), "X", 1), now=0)
    assert (
        history_ms(catalogue)
        == max(m.rules.price_delay_ms for m in catalogue.modes.values()) + 2000
    )


class RecordingSDK:
    def __init__(self, expect: int = 0) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.expect = expect
        self.all_in = asyncio.Event()

    def _record(self, call: tuple[str, tuple[Any, ...], dict[str, Any]]) -> None:
        self.calls.append(call)
        if len(self.calls) >= self.expect:
            self.all_in.set()

    async def update_counter(self, name: str, **kw: Any) -> None:
        self._record(("update_counter", (name,), kw))

    async def list_add(self, name: str, value: str) -> None:
        self._record(("list_add", (name, value), {}))

    async def list_remove(self, name: str, value: str) -> None:
        self._record(("list_remove", (name, value), {}))


async def test_agones_counts_and_players_go_out_in_order() -> None:
    sdk = RecordingSDK(expect=3)
    report = PoolReport(sdk, capacity=5)
    report.matches(1)
    report.player("m-1", "alice", True)
    report.player("m-1", "alice", False)
    task = asyncio.create_task(report.run())
    try:
        await asyncio.wait_for(sdk.all_in.wait(), 5)
    finally:
        task.cancel()
    assert sdk.calls == [
        ("update_counter", ("matches",), {"count": 1, "capacity": 5}),
        ("list_add", ("players", "m-1/alice"), {}),
        ("list_remove", ("players", "m-1/alice"), {}),
    ]


async def test_an_sdk_without_counters_is_skipped() -> None:
    report = PoolReport(object(), capacity=2)
    await report._call("update_counter", "matches", count=1, capacity=2)  # no error
    assert report._missing == {"update_counter"}
