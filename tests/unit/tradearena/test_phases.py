"""The phase machine shared by the local runtime and the operator."""

from __future__ import annotations

import pytest

from tradearena.contracts.phases import GamePhase, MatchPhase, ServerPhase
from tradearena.orchestration.phases import (
    SERVER_EVENTS,
    Event,
    TransitionError,
    server_event,
    transition,
)


def test_happy_path() -> None:
    phase = MatchPhase.PENDING
    for event, expected in [
        (Event.CREATED, MatchPhase.CREATING),
        (Event.READY, MatchPhase.READY),
        (Event.LIVE, MatchPhase.LIVE),
        (Event.FINISHED, MatchPhase.FINISHED),
    ]:
        phase = transition(phase, event).phase
        assert phase is expected


def test_failure_before_live_retries_then_fails() -> None:
    decision = transition(MatchPhase.CREATING, Event.FAILED, retries_left=1)
    assert (decision.phase, decision.retry) == (MatchPhase.PENDING, True)
    decision = transition(MatchPhase.CREATING, Event.STARTUP_TIMEOUT, retries_left=0)
    assert (decision.phase, decision.retry) == (MatchPhase.FAILED, False)


def test_failure_once_live_restarts_in_place() -> None:
    decision = transition(MatchPhase.LIVE, Event.FAILED, retries_left=0)
    assert (decision.phase, decision.restart_in_place) == (MatchPhase.LIVE, True)


def test_a_lost_shared_server_fails_the_match_even_once_live() -> None:
    decision = transition(MatchPhase.LIVE, Event.LOST, retries_left=2, started=True)
    assert (decision.phase, decision.restart_in_place) == (MatchPhase.FAILED, False)
    assert transition(MatchPhase.CANCELLING, Event.LOST).phase is MatchPhase.CANCELLED


def test_cancel_from_any_active_phase_and_terminal_phases_absorb() -> None:
    for phase in (MatchPhase.PENDING, MatchPhase.CREATING, MatchPhase.READY, MatchPhase.LIVE):
        assert transition(phase, Event.CANCEL).phase is MatchPhase.CANCELLING
    assert transition(MatchPhase.CANCELLING, Event.FINISHED).phase is MatchPhase.CANCELLED
    assert transition(MatchPhase.FINISHED, Event.FAILED).phase is MatchPhase.FINISHED
    with pytest.raises(TransitionError, match="no transition from Pending on finished"):
        transition(MatchPhase.PENDING, Event.FINISHED)


@pytest.mark.parametrize(
    ("reported", "event"),
    [
        ("Ready", Event.READY),
        ("Live", Event.LIVE),
        ("Finished", Event.FINISHED),
        ("Cancelled", Event.FINISHED),
        ("Pending", None),
        ("live", None),
        (None, None),
    ],
)
def test_a_servers_report_maps_to_one_event(reported: str | None, event: Event | None) -> None:
    assert server_event(reported) is event


def test_every_server_phase_has_an_event() -> None:
    assert set(SERVER_EVENTS) == set(ServerPhase)


def test_an_ended_game_reports_finished_or_cancelled() -> None:
    assert ServerPhase.ended(GamePhase.FINISHED) is ServerPhase.FINISHED
    assert ServerPhase.ended(GamePhase.CANCELLED) is ServerPhase.CANCELLED


def test_a_server_that_keeps_failing_fails_its_match_even_once_live() -> None:
    for phase in (MatchPhase.PENDING, MatchPhase.CREATING, MatchPhase.READY, MatchPhase.LIVE):
        assert transition(phase, Event.LOST).phase is MatchPhase.FAILED
    assert transition(MatchPhase.CANCELLING, Event.LOST).phase is MatchPhase.CANCELLED
