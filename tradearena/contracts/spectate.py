"""Spectators of a live match (docs/matchserver.md, "Spectators"): what the match server
and the lobby share."""

from __future__ import annotations

from typing import Final

# The match status hash (`keys.match_status`) field with the number of spectators
# connected now (decimal string), rewritten at most once a second (coalesced).
STATUS_SPECTATORS: Final = "spectators"

# Socket.IO events of a spectator on the `/match` namespace.
SPECTATE_EVENT: Final = "spectate"  # server -> spectator: the delayed view, every frame_ms
SPECTATE_SYNC_EVENT: Final = "spectate_sync"  # spectator -> server (ack): view + candles

# Refusal and answer codes.
SPECTATORS_FULL: Final = "spectators_full"  # the match's cap is reached
SERVER_BUSY: Final = "server_busy"  # the server is loaded: its players keep priority
SPECTATOR_READ_ONLY: Final = "spectator_read_only"  # an action or sync from a spectator
