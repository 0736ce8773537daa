"""A matcher process for the concurrency test: matches until told to stop, then one
last round, and writes every match it claimed to a JSON file."""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis

from lobby.matchmaking.queues import Queues, RoundStats
from lobby.settings import QueueSettings
from tradearena.modes import default_catalogue

STOP_KEY = "test:matchers:stop"
UP_KEY = "test:matchers:up"


async def main(url: str) -> dict[str, object]:
    client = aioredis.Redis.from_url(url)
    queues = Queues(client, default_catalogue(), QueueSettings(ticket_ttl_s=3600))
    stats = RoundStats()
    claims = []
    rounds = 0
    await client.incr(UP_KEY)  # the test starts joining once every matcher runs
    while True:
        stop = await client.exists(STOP_KEY)
        got = await queues.match_round(Decimal("1.5"), stats=stats)
        rounds += 1
        claims += [
            {
                "match_id": c.match_id,
                "tickets": [t.ticket_id for t in c.proposal.tickets],
                "players": list(c.players),
            }
            for c in got
        ]
        if stop and not got:
            break
    await client.aclose()
    return {"claims": claims, "rounds": rounds, "conflicts": stats.conflicts}


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(asyncio.run(main(sys.argv[1]))))
