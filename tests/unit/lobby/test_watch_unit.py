"""The platform watch's pure parts: stream IDs and the age of the oldest unstored result."""

from __future__ import annotations

from lobby.watch import entry_ms, oldest_waiting_s


def test_entry_ms() -> None:
    assert entry_ms("1700000000123-4") == 1_700_000_000_123
    assert entry_ms(b"5-0") == 5


def test_oldest_waiting_is_the_older_of_pending_and_undelivered() -> None:
    now = 1_000_000
    assert oldest_waiting_s(now, None, None) == 0.0
    assert oldest_waiting_s(now, "990000-0", None) == 10.0
    assert oldest_waiting_s(now, "995000-0", "980000-1") == 20.0
    assert oldest_waiting_s(now, None, "1000500-0") == 0.0  # clock skew: never negative
