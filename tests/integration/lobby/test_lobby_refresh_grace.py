"""Refresh-token races: a just-rotated token presented again within the grace gets the
same successor; after the grace it is reuse and revokes the family (the real lobby app,
real PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from tradearena.testing.lobby import Client, register

REFRESH = "/api/v1/auth/refresh"


async def _refresh(client: Client, token: str) -> tuple[int, dict[str, Any]]:
    resp = await client.post(REFRESH, json={"refresh_token": token})
    return resp.status, await resp.json(content_type=None)


async def test_a_refresh_race_gives_both_the_same_successor(
    lobby_client_factory: Any, lobby_dsn: str
) -> None:
    async with lobby_client_factory(refresh_reuse_grace_s=5) as client:
        first = await register(client, "racer")
        token = first["refresh_token"]
        # Two tabs refresh with the same token at once (and a third a moment later).
        answers = await asyncio.gather(*(_refresh(client, token) for _ in range(2)))
        answers.append(await _refresh(client, token))
        assert [status for status, _ in answers] == [200, 200, 200], answers
        successors = {body["refresh_token"] for _, body in answers}
        assert len(successors) == 1
        [successor] = successors
        assert successor != token
        assert all(body["access_token"] for _, body in answers)
        # The successor works once, as any refresh token.
        status, third = await _refresh(client, successor)
        assert status == 200 and third["refresh_token"] not in (token, successor)
        metrics = await (await client.get("/metrics")).text()
        assert 'lobby_token_refreshes_total{outcome="grace_replay"} 2.0' in metrics
    # Only digests are stored: neither token appears in the table in any form we issued.
    with psycopg.connect(lobby_dsn) as conn:
        rows = conn.execute("SELECT * FROM refresh_tokens").fetchall()
    dump = repr(rows)
    assert token not in dump and successor not in dump
    # After the grace (here: none) the same presentation is reuse: the family dies.
    async with lobby_client_factory(refresh_reuse_grace_s=0) as client:
        status, body = await _refresh(client, successor)
        assert (status, body["code"]) == (401, "refresh_token_reused")
        status, body = await _refresh(client, third["refresh_token"])
        assert (status, body["code"]) == (401, "refresh_token_revoked")
