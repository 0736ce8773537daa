"""Which Redis keys of an archived match expire, and when. Pure."""

from __future__ import annotations

from tradearena.contracts import keys

DEFAULT_GRACE_S = 3600


def expiring_keys(match_id: str) -> tuple[str, ...]:
    """Every key the match left behind (`keys.match_keys`). The results stream and its
    dead letter, the leaderboards and the queues are shared, never expired here."""
    return keys.match_keys(match_id)


def expiry_s(grace_s: int) -> int:
    """The TTL given (`EXPIRE ... LT`: a key already expiring sooner keeps its TTL).
    A grace of 0 still leaves the keys one second, never deletes them in this step."""
    return max(1, grace_s)
