"""The match-server phase machine, shared by the local runtime and the operator.

    Pending --created--> Creating --ready--> Ready --live--> Live --finished--> Finished
       |                    |                  |               |
       +------- failed / startup_timeout ------+---------------+--> Failed
       +--------------------- cancel ----------------------------> Cancelling --> Cancelled

A failure before the match is live may be retried (back to Pending) while
retries remain; after that, or once live, the runtime restarts the same server
in place (it restores from Redis) and the phase does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    PENDING = "Pending"
    CREATING = "Creating"
    READY = "Ready"
    LIVE = "Live"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Phase.FINISHED, Phase.FAILED, Phase.CANCELLED)


class Event(StrEnum):
    CREATED = "created"  # the server process/pod exists
    READY = "ready"  # it accepts players (feed warm, state loaded)
    LIVE = "live"  # the match started
    FINISHED = "finished"  # results published, server exited cleanly
    FAILED = "failed"  # the server died or could not start
    STARTUP_TIMEOUT = "startup_timeout"
    CANCEL = "cancel"
    STOPPED = "stopped"  # the server is gone after a cancel


class TransitionError(ValueError):
    pass


_TABLE: dict[tuple[Phase, Event], Phase] = {
    (Phase.PENDING, Event.CREATED): Phase.CREATING,
    (Phase.CREATING, Event.READY): Phase.READY,
    (Phase.PENDING, Event.READY): Phase.READY,
    (Phase.READY, Event.LIVE): Phase.LIVE,
    (Phase.CREATING, Event.LIVE): Phase.LIVE,
    (Phase.READY, Event.FINISHED): Phase.FINISHED,
    (Phase.LIVE, Event.FINISHED): Phase.FINISHED,
    (Phase.CANCELLING, Event.FINISHED): Phase.CANCELLED,
    (Phase.CANCELLING, Event.STOPPED): Phase.CANCELLED,
    (Phase.CANCELLING, Event.FAILED): Phase.CANCELLED,
}
for _phase in (Phase.PENDING, Phase.CREATING, Phase.READY, Phase.LIVE):
    _TABLE[(_phase, Event.CANCEL)] = Phase.CANCELLING
    _TABLE[(_phase, Event.FAILED)] = Phase.FAILED
for _phase in (Phase.PENDING, Phase.CREATING):
    _TABLE[(_phase, Event.STARTUP_TIMEOUT)] = Phase.FAILED


@dataclass(frozen=True)
class Decision:
    phase: Phase
    retry: bool = False  # replace the server and go back to Pending
    restart_in_place: bool = False  # same match id; the server restores from Redis


def transition(
    phase: Phase, event: Event, *, retries_left: int = 0, started: bool = False
) -> Decision:
    """Next phase for an event; unknown pairs raise, terminal phases absorb everything."""
    if phase.terminal:
        return Decision(phase)
    if event in (Event.FAILED, Event.STARTUP_TIMEOUT) and phase is not Phase.CANCELLING:
        if started or phase is Phase.LIVE:
            return Decision(phase, restart_in_place=True)
        if retries_left > 0:
            return Decision(Phase.PENDING, retry=True)
    try:
        return Decision(_TABLE[(phase, event)])
    except KeyError:
        raise TransitionError(f"no transition from {phase} on {event}") from None
