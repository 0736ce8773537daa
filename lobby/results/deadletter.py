"""The dead letter's I/O for `tradearena dlq`: read entries from Redis, redrive or drop
them, and audit every redrive and drop in PostgreSQL (`dead_letter_audit`).

Order of one action, so that none goes unaudited:

1. INSERT the audit row (committed, `outcome` NULL: "about to act"), with the whole
   entry as its payload;
2. the Redis change, atomic in one script: a redrive checks the entry is still in
   the dead letter, XADDs its original fields to the results stream and XDELs it; a
   drop XDELs it;
3. UPDATE the audit row: `outcome` `done` (and the new stream id of a redrive),
   `gone` (someone else took the entry meanwhile: nothing changed) or `failed`.

A crash between 1 and 3 leaves a row whose `outcome` is NULL: the action may or may
not have happened; `tradearena dlq show ENTRY_ID` tells (the entry is still there
or not). Acting again is safe: a redriven result is stored once (the worker's
marker row), and a second attempt finds the entry gone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from lobby.results.deadletter_view import Selection
from tradearena.contracts import keys
from tradearena.contracts.deadletter import DeadLetter
from tradearena.redisconn import AnyRedis

Action = Literal["redrive", "drop"]
Outcome = Literal["done", "gone", "failed"]

PAGE = 200

# KEYS: dead letter, results stream; ARGV: dead-letter entry id, then field, value pairs.
# Both keys share the `{results}` hash tag: one slot, so one script on a cluster too.
_REDRIVE = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
"""


class UnknownEntriesError(LookupError):
    def __init__(self, ids: list[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = ids


@dataclass(frozen=True)
class Done:
    letter: DeadLetter
    action: Action
    outcome: Outcome
    audit_id: int
    stream_id: str | None = None  # redrive: the new results-stream entry


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class DeadLetters:
    def __init__(self, redis: AnyRedis, database_url: str) -> None:
        self.redis = redis
        self.database_url = database_url
        self._redrive = redis.register_script(_REDRIVE)
        self._pg: asyncpg.Connection | None = None

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
            self._pg = None

    async def _conn(self) -> asyncpg.Connection:
        if self._pg is None:
            self._pg = await asyncpg.connect(self.database_url, timeout=10)
        return self._pg

    # -- reading ---------------------------------------------------------------

    async def length(self) -> int:
        return int(await self.redis.xlen(keys.RESULTS_DEAD_LETTER))

    async def scan(self) -> AsyncIterator[DeadLetter]:
        """Every entry, oldest first, a page at a time."""
        start = "-"
        while True:
            page: Any = await self.redis.xrange(keys.RESULTS_DEAD_LETTER, start, "+", count=PAGE)
            for entry_id, fields in page:
                yield DeadLetter.from_stream(entry_id, fields)
            if len(page) < PAGE:
                return
            start = "(" + _text(page[-1][0])

    async def get(self, entry_id: str) -> DeadLetter | None:
        got: Any = await self.redis.xrange(keys.RESULTS_DEAD_LETTER, entry_id, entry_id)
        return DeadLetter.from_stream(got[0][0], got[0][1]) if got else None

    async def listing(self, reason: str | None, limit: int) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        async for letter in self.scan():
            if reason is None or letter.reason == reason:
                out.append(letter)
                if len(out) >= limit:
                    break
        return out

    async def select(self, selection: Selection) -> list[DeadLetter]:
        """The entries a command acts on; UnknownEntriesError when a named id is not there
        (then nothing is done to any)."""
        if selection.ids:
            found = [await self.get(i) for i in selection.ids]
            missing = [i for i, d in zip(selection.ids, found, strict=True) if d is None]
            if missing:
                raise UnknownEntriesError(missing)
            return [d for d in found if d is not None]
        return [d async for d in self.scan() if selection.wants(d)]

    # -- acting ----------------------------------------------------------------

    async def act(self, action: Action, letter: DeadLetter, actor: str, note: str) -> Done:
        """Audit, then redrive or drop one entry, then record how it went."""
        conn = await self._conn()
        audit_id: int = await conn.fetchval(
            """
            INSERT INTO dead_letter_audit
                (action, entry_id, original_id, match_id, reason, error, actor, note, payload)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) RETURNING id
            """,
            action,
            letter.entry_id,
            letter.original_id,
            letter.match_id,
            letter.reason,
            letter.error,
            actor,
            note,
            json.dumps(letter.document()),
        )
        outcome: Outcome = "failed"
        stream_id: str | None = None
        try:
            if action == "redrive":
                args: list[bytes | str] = [letter.entry_id]
                for name, value in letter.redrive_fields().items():
                    args += [name, value]
                new_id: Any = await self._redrive(
                    keys=[keys.RESULTS_DEAD_LETTER, keys.RESULTS_STREAM], args=args
                )
                stream_id = _text(new_id) if new_id else None
                outcome = "done" if new_id else "gone"
            else:
                removed = await self.redis.xdel(keys.RESULTS_DEAD_LETTER, letter.entry_id)
                outcome = "done" if removed else "gone"
        finally:
            await conn.execute(
                "UPDATE dead_letter_audit SET outcome = $2, stream_id = $3, completed_at = now()"
                " WHERE id = $1",
                audit_id,
                outcome,
                stream_id,
            )
        return Done(letter, action, outcome, audit_id, stream_id)
