"""A match's record as the match server left it in Redis: header, log, engine result."""

from __future__ import annotations

import json
from typing import Any

from tradearena.contracts import keys
from tradearena.contracts.archive import ArchiveError
from tradearena.redisconn import AnyRedis

LRANGE_CHUNK = 10_000  # entries per LRANGE: a long log never blocks Redis in one call

Record = tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]


async def read_match(redis: AnyRedis, match_id: str) -> Record | None:
    """(header, log entries in their wire form, engine result); None when the header or
    the result is not in Redis (never written, or expired after the archive);
    ArchiveError `bad_json` when they do not parse."""
    raw_header = await redis.get(keys.match_meta(match_id))
    raw_result = await redis.get(keys.match_result(match_id))
    if raw_header is None or raw_result is None:
        return None
    rows: list[bytes | str] = []
    while True:
        chunk = await redis.lrange(
            keys.match_log(match_id), len(rows), len(rows) + LRANGE_CHUNK - 1
        )
        rows.extend(chunk)
        if len(chunk) < LRANGE_CHUNK:
            break
    try:
        return json.loads(raw_header), [json.loads(r) for r in rows], json.loads(raw_result)
    except ValueError as exc:
        raise ArchiveError("bad_json", f"the match's Redis record is not JSON: {exc}") from None
