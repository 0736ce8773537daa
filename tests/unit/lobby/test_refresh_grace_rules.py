"""The refresh-race grace as pure rules (lobby.accounts.refresh_rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lobby.accounts.refresh_rules import (
    StoredToken,
    Verdict,
    judge,
    successor_key,
    successor_token,
    well_formed,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
GRACE = timedelta(seconds=5)


def spent(ago: timedelta) -> StoredToken:
    return StoredToken("f", "u", NOW - DAY, NOW + DAY, NOW - ago, None)


def test_a_token_spent_within_the_grace_is_a_replay_and_after_it_reuse() -> None:
    assert judge(spent(timedelta(seconds=1)), NOW, 60 * DAY, GRACE) is Verdict.GRACE_REPLAY
    assert judge(spent(GRACE), NOW, 60 * DAY, GRACE) is Verdict.GRACE_REPLAY
    assert judge(spent(GRACE + timedelta(milliseconds=1)), NOW, 60 * DAY, GRACE) is (Verdict.REUSED)
    assert judge(spent(timedelta(0)), NOW, 60 * DAY) is Verdict.REUSED  # no grace
    revoked = StoredToken("f", "u", NOW - DAY, NOW + DAY, NOW, NOW)
    assert judge(revoked, NOW, 60 * DAY, GRACE) is Verdict.REVOKED


def test_the_successor_is_the_same_every_time_and_needs_the_key() -> None:
    key, other = successor_key(b"k" * 32), successor_key(b"j" * 32)
    token = "rt_" + "a" * 43
    successor = successor_token(key, token)
    assert successor == successor_token(key, token)
    assert successor != successor_token(other, token)
    assert successor != successor_token(key, token[:-1] + "b")
    assert well_formed(successor) and successor != token
