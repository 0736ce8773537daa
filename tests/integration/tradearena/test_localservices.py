"""The local Redis/PostgreSQL helpers used by `up` and the tests start real servers."""

from __future__ import annotations

import asyncpg
import redis

from tradearena.launcher.localservices import LocalPostgres, LocalRedis


def test_redis_server_answers(redis_url: str, redis_server: LocalRedis) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set("k", "v")
    assert client.get("k") == b"v"
    assert redis_server.running
    client.close()


async def test_postgres_server_answers(postgres_server: LocalPostgres) -> None:
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        assert await conn.fetchval("select current_database()") == "tradearena"
        assert int(await conn.fetchval("show server_version_num")) >= 150000
    finally:
        await conn.close()
