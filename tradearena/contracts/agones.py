"""What a pool server reports to Agones, and what a Fleet and a GameServerAllocation
name to match it (docs/agones.md, charts/tradearena/examples/agones-fleet.yaml).

The Counter counts the matches a server hosts against its capacity (the server's own
TRADEARENA_CAPACITY); the List holds `<match_id>/<player>` for each connected player.
Both are hints for Agones' packing and autoscaling: whether a server takes a match is
decided in Redis (`tradearena.orchestration.allocation.assign`).
"""

from __future__ import annotations

from typing import Final

MATCHES_COUNTER: Final = "matches"
PLAYERS_LIST: Final = "players"
LIST_MAX_CAPACITY: Final = 1000  # Agones' bound on a List's capacity


def player_entry(match_id: str, player: str) -> str:
    """A value of the players List."""
    return f"{match_id}/{player}"
