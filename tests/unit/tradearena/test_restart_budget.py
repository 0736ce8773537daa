"""The restart budget shared by `up`'s supervisor and the relay's publisher."""

from __future__ import annotations

from tradearena.retry import RestartBudget


def test_the_backoff_doubles_up_to_its_cap_and_five_failures_in_a_minute_spend_it() -> None:
    budget = RestartBudget(initial_s=0.5, max_s=3)
    delays = [budget.failed(t) for t in (0, 1, 2, 3)]
    assert delays == [0.5, 1, 2, 3]
    assert not budget.spent(3)
    assert budget.failed(4) == 3
    assert budget.spent(4)
    assert budget.recent(4) == 5


def test_failures_age_out_of_the_window_and_the_backoff_shrinks_again() -> None:
    budget = RestartBudget(initial_s=1, max_s=100, window_s=60)
    for t in (0, 10, 20, 30):
        budget.failed(t)
    assert budget.recent(59) == 4
    assert budget.recent(60) == 3  # the failure at 0 is a minute old
    assert budget.failed(85) == 2  # only the one at 30 is still within the window
    assert not budget.spent(85)
