"""A match server is either dedicated (its match in its settings) or a pool server
(server_id and capacity); the matches it builds from assignments."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

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
