"""The three phase vocabularies, one definition each (the strings are wire values).

* `GamePhase`: the engine's own state of a match, in the match log, snapshots,
  client events (`phase`) and the result (`finished` / `cancelled`).
* `ServerPhase`: what a match server reports to its runtime in Redis
  (`keys.match_status` hash and `keys.match_phases` stream, field `phase`).
* `MatchPhase`: the orchestration phase of a match, as the lobby sees it through
  either runtime and as the `Match` resource's `.status.phase`.

How a `ServerPhase` moves a `MatchPhase` is one table, `SERVER_EVENTS` in
`tradearena.orchestration.phases`, next to the phase machine it feeds.
"""

from __future__ import annotations

from enum import StrEnum


class GamePhase(StrEnum):
    WAITING = "waiting"
    LIVE = "live"
    SETTLING = "settling"
    FINISHED = "finished"
    CANCELLED = "cancelled"

    @property
    def over(self) -> bool:
        return self in GAME_OVER  # a set lookup: checked on every pass of the clock


GAME_OVER = frozenset({GamePhase.FINISHED, GamePhase.CANCELLED})


class ServerPhase(StrEnum):
    READY = "Ready"  # accepts players: feed warm, state loaded
    LIVE = "Live"  # the match started
    FINISHED = "Finished"  # settled and published
    CANCELLED = "Cancelled"  # settled as cancelled and published

    @classmethod
    def ended(cls, game: GamePhase) -> ServerPhase:
        """What a server reports once its game is over."""
        return cls.CANCELLED if game is GamePhase.CANCELLED else cls.FINISHED


class MatchPhase(StrEnum):
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
        return self in (MatchPhase.FINISHED, MatchPhase.FAILED, MatchPhase.CANCELLED)

    @property
    def reachable(self) -> bool:
        """Players can connect: the server has an address and accepts them."""
        return self in (MatchPhase.READY, MatchPhase.LIVE)
