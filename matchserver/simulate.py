"""A whole match played by scripted players over synthetic prices, in-process.

Used by `tradearena simulate` (and `up` until the platform runs) to show the
engine end to end, and by tests as a source of realistic logs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from matchserver.engine.log import MatchRecord
from matchserver.engine.match import Match
from matchserver.feed.synthetic import SyntheticPrices
from tradearena.modes import Catalogue


@dataclass(frozen=True)
class SimulationSpec:
    mode: str = "standard"
    format: str = "blitz"
    players: int = 6
    seed: int = 1
    step_ms: int = 1000
    match_id: str = "sim-1"
    player_ids: tuple[str, ...] = ()  # default: player-1, player-2, ...


class ScriptedPlayer:
    """Trades like an impatient human: opens with stops, takes profit, uses abilities."""

    def __init__(self, pid: str, rng: random.Random) -> None:
        self.pid = pid
        self.rng = rng
        self.orders = 0
        self.online = True

    def action(self, state: dict[str, Any]) -> dict[str, Any] | None:
        rng = self.rng
        self.orders += 1
        coid = f"{self.pid}-{self.orders}"
        price = Decimal(state["official_price"] or "0")
        roll = rng.random()
        if state["charges"] and roll < 0.05:
            if rng.random() < 0.5:
                return {"type": "ability", "ability": "shield", "client_order_id": coid}
            return {
                "type": "ability",
                "ability": "trade_delay",
                "target": "leader",
                "client_order_id": coid,
            }
        if state["peek_meter"] >= 100 and roll < 0.2:
            return {"type": "peek", "client_order_id": coid}
        if state["position"] is None:
            if roll > 0.3 or price <= 0:
                return None
            side = rng.choice(("long", "short"))
            sign = 1 if side == "long" else -1
            lev = rng.choice((2, 5, 10, 20))
            margin = Decimal(rng.choice((100, 250, 500, 1000)))
            sl = (price * (1 - sign * Decimal("0.003"))).quantize(Decimal("0.01"))
            tp = (price * (1 + sign * Decimal("0.004"))).quantize(Decimal("0.01"))
            order: dict[str, Any] = {
                "type": "open",
                "side": side,
                "margin": str(margin),
                "leverage": lev,
                "client_order_id": coid,
            }
            if rng.random() < 0.7:
                order["stop_loss"], order["take_profit"] = str(sl), str(tp)
            return order
        if roll < 0.08:
            return {"type": "close", "fraction": rng.choice(("0.5", "1")), "client_order_id": coid}
        return None


def simulate(catalogue: Catalogue, spec: SimulationSpec) -> MatchRecord:
    mode = catalogue.mode(spec.mode)
    rules = mode.rules
    duration = catalogue.duration_ms(spec.format)
    rng = random.Random(spec.seed)  # noqa: S311 - simulated players, not secrets
    pids = list(spec.player_ids) or [f"player-{i + 1}" for i in range(spec.players)]
    match = Match(spec.match_id, spec.mode, rules, pids, duration, created_at=0)
    bots = [ScriptedPlayer(pid, random.Random(rng.random())) for pid in pids]  # noqa: S311
    prices = SyntheticPrices(seed=spec.seed, step_ms=spec.step_ms, annual_vol=2.0)
    now = 0
    for bot in bots:
        match.connect(bot.pid, now)
    while match.official is None:  # warm the delay line, like a server waiting for its feed
        match.feed(prices.next_price(), now)
        now += spec.step_ms
        match.advance(now)
    match.start(now)
    end = now + duration
    while now < end and not match.phase.over:
        match.feed(prices.next_price(), now)
        for bot in bots:
            if rng.random() < 0.002 and bot.online:
                bot.online = False
                match.disconnect(bot.pid, now)
            elif not bot.online and rng.random() < 0.05:
                bot.online = match.connect(bot.pid, now)[0].ok
            if bot.online:
                action = bot.action(match.player_state(bot.pid))
                if action is not None:
                    match.submit(bot.pid, action, now)
        now += spec.step_ms
        match.advance(now)
    match.advance(end)
    return MatchRecord(match.header(), list(match.log), match.result())
