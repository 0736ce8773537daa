"""Season and day windows of the leaderboards, and the OpenSkill update (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from lobby.results.leaderboards import day_window, season_window
from lobby.results.skill import Skill, rate

EPOCH = date(2026, 1, 1)


def test_season_one_starts_at_the_epoch_and_lasts_120_days() -> None:
    n, start, end = season_window(datetime(2026, 1, 1, tzinfo=UTC), EPOCH, 120)
    assert (n, start, end - start) == (1, datetime(2026, 1, 1, tzinfo=UTC), timedelta(days=120))
    n, start, _ = season_window(datetime(2026, 5, 1, 0, 0, tzinfo=UTC), EPOCH, 120)
    assert n == 2 and start == datetime(2026, 5, 1, tzinfo=UTC)  # day 120 opens season 2
    n, _, _ = season_window(datetime(2025, 12, 31, tzinfo=UTC), EPOCH, 120)
    assert n == 0  # before the first season


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)))
def test_windows_hold_now(naive: datetime) -> None:
    now = naive.replace(tzinfo=UTC)
    _, start, end = season_window(now, EPOCH, 120)
    assert start <= now < end and end - start == timedelta(days=120)
    d0, d1 = day_window(now)
    assert d0 <= now < d1 and d1 - d0 == timedelta(days=1) and d0.hour == 0


def test_winner_gains_loser_loses_ties_move_less() -> None:
    before = {"a": Skill(), "b": Skill(), "c": Skill()}
    after = rate(before, {"a": 1, "b": 2, "c": 3})
    assert after["a"].mu > 25 > after["c"].mu
    assert all(after[p].sigma < before[p].sigma for p in before)
    tied = rate(before, {"a": 1, "b": 1, "c": 3})
    assert tied["a"].mu == tied["b"].mu < after["a"].mu
    assert rate({}, {"solo": 1}) == {"solo": Skill()}
