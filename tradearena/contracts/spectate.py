"""Spectators: what the match server and the lobby share about them."""

from __future__ import annotations

from typing import Final

# Field of the match status hash (`keys.match_status`): spectators watching now (decimal).
STATUS_SPECTATORS: Final = "spectators"
