"""The feed stream's wire format: what the relay writes is what its readers decode."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tradearena.contracts.feed import FeedTick, MalformedTickError, decode_tick, encode_tick


def test_stream_entry_round_trip_keeps_the_tick_identity() -> None:
    tick = FeedTick("BTCUSDT", D("114048.94"), 1759276800120, 1759276800200, "replay", 42, 17)
    raw = {k.encode(): v.encode() for k, v in encode_tick(tick, "relay-a").items()}
    assert decode_tick("BTCUSDT", tick.stream_id.encode(), raw) == tick
    assert raw[b"relay"] == b"relay-a"
    text = encode_tick(tick, "relay-a")
    assert decode_tick("BTCUSDT", tick.stream_id, text) == tick


@pytest.mark.parametrize(
    ("entry_id", "fields"),
    [
        ("1-0", {"recv_ms": "1"}),  # no price
        ("1-0", {"price": "abc", "recv_ms": "1"}),
        ("1-0", {"price": "1", "recv_ms": "soon"}),
        ("1", {"price": "1", "recv_ms": "1"}),  # not an event_ms-seq id
    ],
)
def test_anything_else_is_one_malformed_error(entry_id: str, fields: dict[str, str]) -> None:
    with pytest.raises(MalformedTickError):
        decode_tick("BTCUSDT", entry_id, fields)
