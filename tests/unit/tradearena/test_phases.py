"""The phase machine shared by the local runtime and the operator."""

from __future__ import annotations

import pytest

from tradearena.orchestration.phases import Event, Phase, TransitionError, transition


def test_happy_path() -> None:
    phase = Phase.PENDING
    for event, expected in [
        (Event.CREATED, Phase.CREATING),
        (Event.READY, Phase.READY),
        (Event.LIVE, Phase.LIVE),
        (Event.FINISHED, Phase.FINISHED),
    ]:
        phase = transition(phase, event).phase
        assert phase is expected


def test_failure_before_live_retries_then_fails() -> None:
    decision = transition(Phase.CREATING, Event.FAILED, retries_left=1)
    assert (decision.phase, decision.retry) == (Phase.PENDING, True)
    decision = transition(Phase.CREATING, Event.STARTUP_TIMEOUT, retries_left=0)
    assert (decision.phase, decision.retry) == (Phase.FAILED, False)


def test_failure_once_live_restarts_in_place() -> None:
    decision = transition(Phase.LIVE, Event.FAILED, retries_left=0)
    assert (decision.phase, decision.restart_in_place) == (Phase.LIVE, True)


def test_cancel_from_any_active_phase_and_terminal_phases_absorb() -> None:
    for phase in (Phase.PENDING, Phase.CREATING, Phase.READY, Phase.LIVE):
        assert transition(phase, Event.CANCEL).phase is Phase.CANCELLING
    assert transition(Phase.CANCELLING, Event.FINISHED).phase is Phase.CANCELLED
    assert transition(Phase.FINISHED, Event.FAILED).phase is Phase.FINISHED
    with pytest.raises(TransitionError, match="no transition from Pending on finished"):
        transition(Phase.PENDING, Event.FINISHED)
