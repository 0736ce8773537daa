"""The pool server's side of the Redis protocol, played by a test (`contracts.pool`):
its state hash, its inbox, and each hosted match's reports written exactly as
`matchserver.store.MatchStore.set_status` writes them (status hash + phase stream in
one transaction). For control-plane tests whose pods run nothing (kwok).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from tradearena.contracts import keys
from tradearena.contracts.phases import ServerPhase
from tradearena.contracts.pool import INBOX_CANCEL_FIELD, INBOX_FIELD, Assignment, ServerState


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def report(r: redis.Redis, match_id: str, phase: ServerPhase, **fields: str | int) -> None:
    """What a match server reports: `MatchStore.set_status`."""
    data: dict[Any, Any] = {"phase": str(phase), **fields}
    with r.pipeline(transaction=True) as pipe:
        pipe.hset(keys.match_status(match_id), mapping=data)
        pipe.xadd(keys.match_phases(match_id), data, maxlen=1000, approximate=True)
        pipe.execute()


class ScriptedPoolServer:
    """Declares itself ready with `capacity`; with `auto_ack`, reports every assigned
    match Ready at once; settles a cancelled match as Cancelled and frees its slot."""

    def __init__(
        self, redis_url: str, server_id: str, capacity: int, *, auto_ack: bool = True
    ) -> None:
        self.r = redis.Redis.from_url(redis_url)
        self.server_id = server_id
        self.capacity = capacity
        self.auto_ack = auto_ack
        self.assigned: list[str] = []  # in inbox order
        self.cancelled: dict[str, str | None] = {}  # match -> reason found on cancel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"pool-{server_id}", daemon=True)

    def start(self) -> ScriptedPoolServer:
        now = int(time.time() * 1000)
        self.r.hset(
            keys.server_state(self.server_id),
            mapping={
                ServerState.CAPACITY: self.capacity,
                ServerState.PLAYERS: 0,
                ServerState.READY: 1,
                ServerState.DRAINING: 0,
                ServerState.HEARTBEAT_MS: now,
                ServerState.STARTED_MS: now,
            },
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.r.close()

    def hosted(self) -> dict[str, Assignment]:
        raw = self.r.hgetall(keys.server_matches(self.server_id))
        return {_text(k): Assignment.from_json(v) for k, v in raw.items()}

    def ack(self, match_id: str, connected: int = 0) -> None:
        players = len(self.hosted()[match_id].players)
        report(self.r, match_id, ServerPhase.READY, connected=connected, players=players)

    def _serve(self) -> None:
        inbox = keys.server_inbox(self.server_id)
        last = "0-0"
        while not self._stop.is_set():
            got: Any = self.r.xread({inbox: last}, block=200, count=100)
            for _, entries in got or []:
                for entry_id, fields in entries:
                    last = _text(entry_id)
                    data = {_text(k): _text(v) for k, v in fields.items()}
                    if INBOX_FIELD in data:
                        self.assigned.append(data[INBOX_FIELD])
                        if self.auto_ack:
                            self.ack(data[INBOX_FIELD])
                    elif INBOX_CANCEL_FIELD in data:
                        self._cancel(data[INBOX_CANCEL_FIELD])

    def _cancel(self, match_id: str) -> None:
        reason = self.r.get(keys.match_cancel(match_id))
        self.cancelled[match_id] = _text(reason) if reason is not None else None
        report(self.r, match_id, ServerPhase.CANCELLED)
        self.r.hdel(keys.server_matches(self.server_id), match_id)
