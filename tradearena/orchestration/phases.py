"""The phase machine of a match (`MatchPhase`), shared by the local runtime and the operator.

    Pending --created--> Creating --ready--> Ready --live--> Live --finished--> Finished
       |                    |                  |               |
       +------- failed / startup_timeout ------+---------------+--> Failed
       +--------------------- cancel ----------------------------> Cancelling --> Cancelled

A failure before the match is live may be retried (back to Pending) while
retries remain; after that, or once live, the runtime restarts the same server
in place (it restores from Redis) and the phase does not change, until its
restarts are spent or its shared server is gone for good (`lost`: Failed, or
Cancelled when it was cancelling).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tradearena.contracts.phases import MatchPhase, ServerPhase


class Event(StrEnum):
    CREATED = "created"  # the server process/pod exists
    READY = "ready"  # it accepts players (feed warm, state loaded)
    LIVE = "live"  # the match started
    FINISHED = "finished"  # results published, server exited cleanly
    FAILED = "failed"  # the server died or could not start
    STARTUP_TIMEOUT = "startup_timeout"
    CANCEL = "cancel"
    STOPPED = "stopped"  # the server is gone after a cancel
    LOST = "lost"  # its server is gone for good, or keeps failing: no restart in place


class TransitionError(ValueError):
    pass


# What a match server's own report (`ServerPhase`, from Redis) means to the machine.
# Cancelled is FINISHED too: a server only settles as cancelled after a cancel, and
# Cancelling --finished--> Cancelled. The local runtime follows every report; the
# operator learns Ready and the end from the pod and takes only Live from here.
SERVER_EVENTS: dict[ServerPhase, Event] = {
    ServerPhase.READY: Event.READY,
    ServerPhase.LIVE: Event.LIVE,
    ServerPhase.FINISHED: Event.FINISHED,
    ServerPhase.CANCELLED: Event.FINISHED,
}


def server_event(reported: str | None) -> Event | None:
    """The event for a server's reported phase; None for anything unknown (or nothing)."""
    if reported is None:
        return None
    try:
        return SERVER_EVENTS[ServerPhase(reported)]
    except ValueError:
        return None


_TABLE: dict[tuple[MatchPhase, Event], MatchPhase] = {
    (MatchPhase.PENDING, Event.CREATED): MatchPhase.CREATING,
    (MatchPhase.CREATING, Event.READY): MatchPhase.READY,
    (MatchPhase.PENDING, Event.READY): MatchPhase.READY,
    (MatchPhase.READY, Event.LIVE): MatchPhase.LIVE,
    (MatchPhase.CREATING, Event.LIVE): MatchPhase.LIVE,
    (MatchPhase.READY, Event.FINISHED): MatchPhase.FINISHED,
    (MatchPhase.LIVE, Event.FINISHED): MatchPhase.FINISHED,
    (MatchPhase.CANCELLING, Event.FINISHED): MatchPhase.CANCELLED,
    (MatchPhase.CANCELLING, Event.STOPPED): MatchPhase.CANCELLED,
    (MatchPhase.CANCELLING, Event.FAILED): MatchPhase.CANCELLED,
}
for _phase in (MatchPhase.PENDING, MatchPhase.CREATING, MatchPhase.READY, MatchPhase.LIVE):
    _TABLE[(_phase, Event.CANCEL)] = MatchPhase.CANCELLING
    _TABLE[(_phase, Event.FAILED)] = MatchPhase.FAILED
    _TABLE[(_phase, Event.LOST)] = MatchPhase.FAILED
_TABLE[(MatchPhase.CANCELLING, Event.LOST)] = MatchPhase.CANCELLED
for _phase in (MatchPhase.PENDING, MatchPhase.CREATING):
    _TABLE[(_phase, Event.STARTUP_TIMEOUT)] = MatchPhase.FAILED


@dataclass(frozen=True)
class Decision:
    phase: MatchPhase
    retry: bool = False  # replace the server and go back to Pending
    restart_in_place: bool = False  # same match id; the server restores from Redis


def transition(
    phase: MatchPhase, event: Event, *, retries_left: int = 0, started: bool = False
) -> Decision:
    """Next phase for an event; unknown pairs raise, terminal phases absorb everything."""
    if phase.terminal:
        return Decision(phase)
    if event in (Event.FAILED, Event.STARTUP_TIMEOUT) and phase is not MatchPhase.CANCELLING:
        if started or phase is MatchPhase.LIVE:
            return Decision(phase, restart_in_place=True)
        if retries_left > 0:
            return Decision(MatchPhase.PENDING, retry=True)
    try:
        return Decision(_TABLE[(phase, event)])
    except KeyError:
        raise TransitionError(f"no transition from {phase} on {event}") from None
