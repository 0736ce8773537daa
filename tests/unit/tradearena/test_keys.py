"""Redis key layout: what one atomic script touches must live in one cluster slot."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from tradearena.contracts import keys
from tradearena.contracts.candles import CandleInterval


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


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ethusdt"])
def test_a_symbols_candles_and_lease_keys_share_the_slot_of_its_feed(symbol: str) -> None:
    """The fenced publish writes the tick and the candles it closes in one script."""
    names = [keys.feed_stream(symbol), keys.feed_leader(symbol)]
    names += [keys.feed_handover(symbol), keys.feed_standby(symbol)]  # the lease scripts'
    names += [keys.candles(symbol, i) for i in CandleInterval]
    assert len(set(names)) == 6
    assert len({_slot(n) for n in names}) == 1
    assert keys.candles(symbol, CandleInterval.M1) == f"ta:feed:{{{symbol.upper()}}}:candles:1m"


def test_matches_spread_over_slots() -> None:
    assert len({_slot(keys.match_log(f"m-{i}")) for i in range(3)}) == 3


@pytest.mark.parametrize("match_id", ["m-1", "01J9ZK3V8Q"])
def test_the_result_publish_stays_in_one_slot(match_id: str) -> None:
    """The publish-once script (marker + stream) and the dead-lettering transaction
    (dead letter + ack on the stream) each touch one slot."""
    names = [keys.RESULTS_STREAM, keys.RESULTS_DEAD_LETTER, keys.result_published(match_id)]
    assert len({_slot(n) for n in names}) == 1


@pytest.mark.parametrize("match_id", ["m-1", "01J9ZK3V8Q"])
def test_a_matchs_pool_binding_shares_its_slot(match_id: str) -> None:
    """match_keys: the match's own keys and its binding on one slot, its published-marker
    on the results slot (the publish-once script's)."""
    own, results = set(), set()
    for name in keys.match_keys(match_id):
        (results if name == keys.result_published(match_id) else own).add(_slot(name))
    assert own == {_slot(keys.match_log(match_id))}
    assert results == {_slot(keys.RESULTS_STREAM)}


@pytest.mark.parametrize("server_id", ["srv-a", "pool-7f3c"])
def test_a_pool_servers_keys_share_a_slot(server_id: str) -> None:
    """The allocation script checks the state, records the match and wakes the inbox."""
    names = [
        keys.server_matches(server_id),
        keys.server_inbox(server_id),
        keys.server_state(server_id),
    ]
    assert len(set(names)) == 3
    assert len({_slot(n) for n in names}) == 1


def test_every_shared_key_builder_has_a_hash_tag() -> None:
    """A key without a tag would hash on its whole name: fine for one key alone, but
    every shared builder is meant to land with its group."""
    built = [
        getattr(keys, name)("x")
        for name in dir(keys)
        if not name.startswith("_")
        and callable(getattr(keys, name))
        and name not in ("match_keys", "annotations", "candles")
    ]
    constants = [keys.RESULTS_STREAM, keys.RESULTS_DEAD_LETTER, keys.QUEUE_EXPIRY]
    constants += [keys.candles("x", "1s")]
    for name in [*built, *constants]:
        assert name.startswith("ta:"), name
        assert "{" in name and "}" in name.split("{", 1)[1], name
