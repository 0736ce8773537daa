"""The feed stream's wire format: one writer (the relay's publisher), several readers
(the match server's `RelaySource`, the lobby's `auto` format choice).

Transport: the Redis stream `keys.feed_stream(symbol)`, one entry per tick. The
entry ID is the tick's identity `event_ms-seq` (explicit, so Redis itself refuses
a duplicate or an older tick); the fields are strings:

| field | meaning |
|---|---|
| `price` | decimal price |
| `event_ms` | when it happened upstream (same as the ID's first part) |
| `recv_ms` | when the relay received it |
| `seq` | tie-breaker within a millisecond (same as the ID's second part) |
| `source` | `binance`, `synthetic` or `replay` |
| `relay` | the replica that published it |
| `source_ms` | replay only: when it happened in the archive |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True, slots=True)
class FeedTick:
    """One price. `event_ms`/`seq` identify it (stream ID); `recv_ms` is when we got it."""

    symbol: str
    price: Decimal
    event_ms: int
    recv_ms: int
    source: str
    seq: int
    source_ms: int | None = None  # replay: when it happened in the archive

    @property
    def stream_id(self) -> str:
        return f"{self.event_ms}-{self.seq}"

    def key(self) -> tuple[int, int]:
        return (self.event_ms, self.seq)


class MalformedTickError(ValueError):
    """A stream entry that is not a tick: readers skip (and count) it."""


def encode_tick(tick: FeedTick, relay: str) -> dict[str, str]:
    """The stream fields of a tick (its entry ID is `tick.stream_id`)."""
    fields = {
        "price": str(tick.price),
        "event_ms": str(tick.event_ms),
        "recv_ms": str(tick.recv_ms),
        "seq": str(tick.seq),
        "source": tick.source,
        "relay": relay,
    }
    if tick.source_ms is not None:
        fields["source_ms"] = str(tick.source_ms)
    return fields


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_tick(symbol: str, entry_id: bytes | str, fields: Mapping[Any, Any]) -> FeedTick:
    """A stream entry back into a tick (its identity is the entry ID), as redis-py
    returns it (bytes or str); MalformedTickError for anything else."""
    try:
        text = {_text(k): _text(v) for k, v in fields.items()}
        ms, seq = _text(entry_id).split("-")
        source_ms = text.get("source_ms")
        return FeedTick(
            symbol=symbol,
            price=Decimal(text["price"]),
            event_ms=int(ms),
            recv_ms=int(text["recv_ms"]),
            source=text.get("source", "relay"),
            seq=int(seq),
            source_ms=int(source_ms) if source_ms is not None else None,
        )
    except (KeyError, ValueError, ArithmeticError, InvalidOperation) as exc:
        raise MalformedTickError(f"entry {_text(entry_id)!r}: {exc!r}") from None
