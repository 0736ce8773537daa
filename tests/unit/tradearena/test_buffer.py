"""The buffer policy of a pool: free slots kept ready, bounded servers, idle ones stopped."""

from __future__ import annotations

import pytest

from tradearena.orchestration.buffer import (
    BufferPolicy,
    Plan,
    PoolMember,
    desired,
    free_slots,
    plan,
)

POLICY = BufferPolicy(capacity=50, buffer=10, min_servers=1, max_servers=4, idle_stop_s=60)


def test_enough_servers_for_every_match_plus_the_buffer() -> None:
    assert desired(POLICY, 0) == 1  # 10 free slots fit in one server
    assert desired(POLICY, 40) == 1  # 40 + 10 = 50: still one
    assert desired(POLICY, 41) == 2  # 9 free would be below the buffer
    assert desired(POLICY, 1000) == 4  # never above max_servers
    assert desired(BufferPolicy(capacity=5, buffer=0, min_servers=0), 0) == 0


def test_a_server_is_started_once_free_slots_drop_below_the_buffer() -> None:
    one = [PoolMember("s1", count=40)]
    assert free_slots(POLICY, one) == 10
    assert plan(POLICY, one, now=0) == Plan()
    busier = [PoolMember("s1", count=41)]
    assert plan(POLICY, busier, now=0) == Plan(start=1)
    # One already starting counts: no second start for the same shortfall.
    assert plan(POLICY, [*busier, PoolMember("s2", 0, ready=False)], now=0) == Plan()


def test_matches_waiting_for_a_slot_count_as_demand() -> None:
    full = [PoolMember("s1", count=50), PoolMember("s2", 0, ready=False)]
    # 120 matches waiting: with the 50 hosted, 180 slots are needed, 4 servers.
    assert plan(POLICY, full, now=0, pending=120) == Plan(start=2)
    assert plan(POLICY, full, now=0, pending=1000) == Plan(start=2)  # max_servers


def test_only_surplus_servers_idle_long_enough_are_stopped_newest_first() -> None:
    servers = [
        PoolMember("s1", 3),
        PoolMember("s2", 0, idle_since=0),
        PoolMember("s3", 0, idle_since=0),
        PoolMember("s4", 0, idle_since=50),
    ]
    assert plan(POLICY, servers, now=59) == Plan()  # nobody idle for a minute yet
    assert plan(POLICY, servers, now=61) == Plan(stop=("s3", "s2"))  # s4 idles 11 s only
    assert plan(POLICY, servers, now=120) == Plan(stop=("s4", "s3", "s2"))
    # Matches keep their server, and min_servers is kept even when all are idle.
    alone = [PoolMember("s1", 0, idle_since=0)]
    assert plan(POLICY, alone, now=1000) == Plan()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0, "buffer": 1}, "capacity"),
        ({"capacity": 1, "buffer": -1}, "buffer"),
        ({"capacity": 1, "buffer": 0, "min_servers": 3, "max_servers": 2}, "min_servers"),
        ({"capacity": 1, "buffer": 0, "min_servers": 0, "max_servers": 0}, "max_servers"),
    ],
)
def test_a_policy_that_cannot_hold_is_refused(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BufferPolicy(**kwargs)
