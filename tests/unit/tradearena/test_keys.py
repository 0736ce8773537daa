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
    names = [keys.queue_tickets("duel"), keys.queue_tickets("arena"), keys.QUEUE_EXPIRY,
             keys.QUEUE_FORMING, keys.queue_player("p1"), keys.queue_assignment("p1")]  # fmt: skip
    assert len({key_slot(n.encode()) for n in names}) == 1
