"""A player's rating history, built from the stored rows (pure: no I/O).

The results worker keeps each player's current rating (`ratings`) and, for every
rated match, the change it made to the rating's ordinal (`match_players.rating_delta`),
applied in the order the results were stored (`match_results.stored_at`). The rating
after a match is therefore the current one less the changes of every later match:
walking back from the newest, which needs only the newest N matches for N points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class RatingPoint(BaseModel):
    """The rating (ordinal, mu - 3 sigma) right after one rated match."""

    match_id: str
    ended_at: datetime | None
    rank: int | None
    players: int
    delta: float
    rating: float


def rating_history(current: float, newest_first: Sequence[Mapping[str, Any]]) -> list[RatingPoint]:
    """Points oldest first, from the current ordinal and the rated matches newest first
    (rows with `match_id`, `ended_at`, `rank`, `players`, `rating_delta`)."""
    points = []
    after = current
    for row in newest_first:
        delta = float(row["rating_delta"])
        points.append(
            RatingPoint(
                match_id=row["match_id"],
                ended_at=row["ended_at"],
                rank=row["rank"],
                players=row["players"],
                delta=delta,
                rating=after,
            )
        )
        after -= delta
    points.reverse()
    return points
