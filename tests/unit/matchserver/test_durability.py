"""The pure parts of durable commits: settings, WAIT slices, counting online replicas."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from matchserver.durability import (
    NotDurableError,
    WaitPolicy,
    fewest_replicas,
    online_replicas,
)
from matchserver.settings import MatchServerSettings

DEDICATED = {"match_id": "m-1", "players": ("alice", "bob")}


def test_waiting_is_off_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = MatchServerSettings(**DEDICATED)  # type: ignore[arg-type]
    assert (plain.redis_wait_replicas, plain.redis_wait_timeout_ms) == (0, 10_000)
    monkeypatch.setenv("TRADEARENA_REDIS_WAIT_REPLICAS", "2")
    monkeypatch.setenv("TRADEARENA_REDIS_WAIT_TIMEOUT_MS", "2500")
    waiting = MatchServerSettings(**DEDICATED)  # type: ignore[arg-type]
    assert (waiting.redis_wait_replicas, waiting.redis_wait_timeout_ms) == (2, 2500)


@pytest.mark.parametrize(
    "bad",
    [
        {"redis_wait_replicas": -1},
        {"redis_wait_replicas": 17},
        {"redis_wait_timeout_ms": 0},
        {"redis_wait_timeout_ms": -5},
    ],
)
def test_bad_wait_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as err:
        MatchServerSettings(**DEDICATED, **bad)  # type: ignore[arg-type]
    assert next(iter(bad)) in str(err.value)


def test_a_wait_slice_is_short_never_past_the_deadline_and_never_zero() -> None:
    policy = WaitPolicy(replicas=1, timeout_ms=10_000, slice_ms=500)
    assert policy.enabled and not WaitPolicy().enabled
    assert policy.slice_for(9.0) == 500
    assert policy.slice_for(0.2) == 200
    assert policy.slice_for(0.0001) == 1  # WAIT's 0 would mean forever


def test_only_online_replicas_count() -> None:
    info = {
        "role": "master",
        "connected_slaves": 3,
        "slave0": {"ip": "10.0.0.1", "port": 6379, "state": "online"},
        "slave1": {"ip": "10.0.0.2", "port": 6379, "state": "wait_bgsave"},
        "slave2": {"ip": "10.0.0.3", "port": 6379, "state": "online"},
        "slaves_read_only": 1,
    }
    assert online_replicas(info) == 2
    assert online_replicas({"role": "master", "connected_slaves": 0}) == 0
    assert fewest_replicas([info, {"slave0": {"state": "online"}}]) == 1
    assert fewest_replicas([]) == 0


def test_not_durable_says_how_far_it_got() -> None:
    err = NotDurableError(wanted=1, seen=0, waited_s=10.02, landed=True, error="")
    assert str(err) == "0 of 1 replicas acknowledged the write after 10.0 s"
    lost = NotDurableError(1, 0, 10.0, False, "ConnectionError()")
    assert "last error: ConnectionError()" in str(lost)
