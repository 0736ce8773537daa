"""Skill ratings with OpenSkill's Plackett-Luce model (pure: no I/O).

Each player is a team of one; the rank order is the match's standings (rank 1
first; equal ranks are ties). The leaderboard and matchmaking use `mu`; the
public all-time leaderboard sorts by the conservative `ordinal` (mu - 3 sigma).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from openskill.models import PlackettLuce

DEFAULT_MU = 25.0
DEFAULT_SIGMA = DEFAULT_MU / 3


@dataclass(frozen=True)
class Skill:
    mu: float = DEFAULT_MU
    sigma: float = DEFAULT_SIGMA

    @property
    def ordinal(self) -> float:
        return self.mu - 3 * self.sigma


@cache
def _model() -> PlackettLuce:
    return PlackettLuce(mu=DEFAULT_MU, sigma=DEFAULT_SIGMA)


def rate(before: Mapping[str, Skill], ranks: Mapping[str, int]) -> dict[str, Skill]:
    """New skills after one match; players without a prior skill start at the default."""
    players = sorted(ranks, key=lambda p: (ranks[p], p))
    if len(players) < 2:
        return {p: before.get(p, Skill()) for p in players}
    model = _model()
    teams = []
    for p in players:
        s = before.get(p, Skill())
        teams.append([model.rating(mu=s.mu, sigma=s.sigma, name=p)])
    rated = model.rate(teams, ranks=[float(ranks[p]) for p in players])
    return {
        p: Skill(float(t[0].mu), float(t[0].sigma)) for p, t in zip(players, rated, strict=True)
    }
