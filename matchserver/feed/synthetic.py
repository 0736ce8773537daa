"""Seeded synthetic prices with realistic volatility, for demos, tests and `up`.

A geometric random walk whose volatility switches between calm and stormy
regimes and occasionally jumps, so that stop-losses, take-profits and
liquidations all happen. Same seed, same prices: runs are reproducible.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from matchserver.engine.money import floor_price


@dataclass
class SyntheticPrices:
    seed: int = 1
    start: Decimal = Decimal("100000")
    step_ms: int = 1000
    annual_vol: float = 0.6  # BTC's typical realised volatility
    storm_factor: float = 4.0
    storm_probability: float = 0.002  # per step: enter a stormy regime
    calm_probability: float = 0.02  # per step: leave it
    jump_probability: float = 0.0005
    jump_size: float = 0.02
    tick: Decimal = Decimal("0.01")
    _rng: random.Random = field(init=False, repr=False)
    _log_price: float = field(init=False, repr=False)
    _stormy: bool = field(init=False, default=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - game prices, not secrets
        self._log_price = math.log(float(self.start))

    def _sigma(self) -> float:
        per_step = self.annual_vol * math.sqrt(self.step_ms / (365 * 24 * 3600 * 1000))
        return per_step * (self.storm_factor if self._stormy else 1.0)

    def next_price(self) -> Decimal:
        rng = self._rng
        if self._stormy:
            self._stormy = rng.random() >= self.calm_probability
        else:
            self._stormy = rng.random() < self.storm_probability
        move = rng.gauss(0.0, self._sigma())
        if rng.random() < self.jump_probability:
            move += rng.choice((-1, 1)) * self.jump_size * rng.random()
        self._log_price += move
        price = Decimal(repr(math.exp(self._log_price)))
        return max(self.tick, floor_price(price, self.tick))

    def __iter__(self) -> Iterator[Decimal]:
        while True:
            yield self.next_price()
