"""Redis key layout: what one atomic script touches must live in one cluster slot."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from tradearena.contracts import keys


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ethusdt"])
def test_a_symbols_stream_and_lease_share_a_slot(symbol: str) -> None:
    stream, lease = keys.feed_stream(symbol), keys.feed_leader(symbol)
    assert stream != lease
    assert key_slot(stream.encode()) == key_slot(lease.encode())


def test_symbols_spread_over_slots() -> None:
    slots = {key_slot(keys.feed_stream(s).encode()) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")}
    assert len(slots) == 3


def test_queue_keys_share_one_slot() -> None:
    names = [
        keys.queue_tickets("duel"),
        keys.queue_tickets("arena"),
        keys.QUEUE_EXPIRY,
        keys.QUEUE_FORMING,
        keys.queue_player("p1"),
        keys.queue_assignment("p1"),
    ]
    assert len({key_slot(n.encode()) for n in names}) == 1


def _slot(key: str) -> int:
    return int(key_slot(key.encode()))


@pytest.mark.parametrize("match_id", ["m-1", "01J9ZK3V8Q"])
def test_a_matchs_keys_share_a_slot(match_id: str) -> None:
    names = [
        keys.match_log(match_id),
        keys.match_meta(match_id),
        keys.match_snapshot(match_id),
        keys.match_status(match_id),
        keys.match_phases(match_id),
        keys.match_cancel(match_id),
        keys.match_result(match_id),
    ]
    assert len(set(names)) == len(names)
    assert len({_slot(n) for n in names}) == 1


def test_matches_spread_over_slots() -> None:
    assert len({_slot(keys.match_log(f"m-{i}")) for i in range(3)}) == 3


@pytest.mark.parametrize("match_id", ["m-1", "01J9ZK3V8Q"])
def test_the_result_publish_stays_in_one_slot(match_id: str) -> None:
    """The publish-once script (marker + stream) and the dead-lettering transaction
    (dead letter + ack on the stream) each touch one slot."""
    names = [keys.RESULTS_STREAM, keys.RESULTS_DEAD_LETTER, keys.result_published(match_id)]
    assert len({_slot(n) for n in names}) == 1
