"""Following many matches' phase streams (`keys.match_phases`) with one reader.

Both runtimes that wait for match servers' reports use it: the operator (a match's
Ready after an allocation, its end after a cancel) and the local runtimes (every phase
of every match they run). A caller follows a match with a handler; the handler gets
the `phase` field of each entry of the stream, in order, from the start of the stream
(a report written before the follow counts), and answers True once it is done with
the match, which ends the follow.

How the streams are read depends on the Redis the client talks to:

* one Redis: one blocking XREAD over every followed stream and the watcher's own wake
  stream (`keys.runtime_wake`), so a burst of matches is one read on one connection and
  a report is seen as soon as it is written; a new follow ends the read at once with an
  entry on the wake stream.
* a Redis Cluster: the streams live on different slots, which no single XREAD may span.
  While something is followed, the watcher reads every stream without blocking, one
  XREAD per slot, all in one cluster pipeline (one round trip per node, in parallel),
  every `poll_s` (50 ms): a report is seen within that interval. Nothing followed,
  nothing read.

A Redis error ends nothing: it is logged and reading resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisError

from tradearena.contracts import keys
from tradearena.redisconn import AnyRedis

log = logging.getLogger(__name__)

BLOCK_MS = 1000  # one blocking read at most (one Redis); deadlines are checked between reads
POLL_S = 0.05  # a cluster's read interval while something is followed
COUNT = 100  # entries per stream and read
_ERROR_PAUSE_S = 0.5

# KEYS: streams of one slot; ARGV: count, then the last id read of each stream.
_XREAD = """
local args = {'XREAD', 'COUNT', ARGV[1], 'STREAMS'}
for _, key in ipairs(KEYS) do args[#args + 1] = key end
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
return redis.call(unpack(args))
"""

# The phase of one entry (None: the entry has none); True: done with this match.
Handler = Callable[[str | None], Awaitable[bool]]


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass(eq=False)
class _Follow:
    handler: Handler
    deadline: float | None
    last: str = "0-0"  # the whole stream: the report may already be there


class PhaseWatch:
    """One reader for the phase streams of every followed match. `name` names the
    watcher's wake stream (unique per process)."""

    def __init__(
        self,
        redis: AnyRedis,
        name: str,
        *,
        block_ms: int = BLOCK_MS,
        poll_s: float = POLL_S,
    ) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self.wake_key = keys.runtime_wake(name)
        self.block_ms = block_ms
        self.poll_s = poll_s
        self._follows: dict[str, _Follow] = {}  # stream -> its follow
        self._wake_last = "$"
        self._nudge = asyncio.Event()  # cluster: a follow was added, or closing
        self._task: asyncio.Task[None] | None = None
        self._wakes: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- the callers' side ----------------------------------------------------

    def follow(
        self,
        match_id: str,
        handler: Handler,
        *,
        timeout_s: float | None = None,
        restart: bool = False,
    ) -> None:
        """Hand every phase report of the match to `handler` until it answers True (or
        `timeout_s` passes: then the follow just ends). Following a followed match
        replaces its handler and deadline, and keeps its place in the stream unless
        `restart` (then its stream is read again from the start)."""
        stream = keys.match_phases(match_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        current = self._follows.get(stream)
        if current is not None and not restart:
            current.handler, current.deadline = handler, deadline
        else:
            self._follows[stream] = _Follow(handler, deadline)
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name=f"phase-watch:{self.wake_key}")
            self._task.add_done_callback(_log_failure)
        self._wake_soon()

    def unfollow(self, match_id: str) -> None:
        self._follows.pop(keys.match_phases(match_id), None)

    def following(self, match_id: str) -> bool:
        return keys.match_phases(match_id) in self._follows

    @property
    def count(self) -> int:
        return len(self._follows)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def close(self) -> None:
        """Stop reading (within one read) and remove the wake stream."""
        self._closed = True
        self._follows.clear()
        if self._task is not None:
            await self.wake()
            done, _ = await asyncio.wait({self._task}, timeout=self.block_ms / 1000 + 1)
            if not done:  # a cancel can be lost inside the client's blocking read
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        for task in list(self._wakes):
            task.cancel()
        if not self.cluster:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.delete(self.wake_key)

    async def wake(self) -> None:
        """End the current read now (errors are logged: the next read is within
        `block_ms` anyway)."""
        self._nudge.set()
        if self.cluster:
            return
        try:
            await self.redis.xadd(self.wake_key, {"wake": "1"}, maxlen=100, approximate=True)
        except (RedisError, OSError) as exc:
            log.warning("phase reader not woken", extra={"error": repr(exc)})

    def _wake_soon(self) -> None:
        if self.cluster:
            self._nudge.set()
            return
        task = asyncio.create_task(self.wake())
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)

    # -- the reader -----------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed:
            self._expire()
            if self.cluster and not self._follows:
                await self._nudge.wait()  # nothing followed: nothing read
                self._nudge.clear()
                continue
            self._nudge.clear()
            try:
                replies = await (self._read_cluster() if self.cluster else self._read_one())
            except (RedisError, OSError) as exc:
                log.warning("phase stream read failed", extra={"error": repr(exc)})
                await asyncio.sleep(_ERROR_PAUSE_S)
                continue
            got = False
            for raw_stream, entries in replies:
                got = got or bool(entries)
                await self._deliver(_text(raw_stream), entries)
            if self.cluster and not got and not self._closed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudge.wait(), self.poll_s)

    def _expire(self) -> None:
        now = time.monotonic()
        for stream in [
            s for s, f in self._follows.items() if f.deadline is not None and f.deadline <= now
        ]:
            del self._follows[stream]

    async def _read_one(self) -> list[Any]:
        """One Redis: one blocking XREAD over the wake stream and every followed one."""
        streams: dict[Any, Any] = {self.wake_key: self._wake_last}
        streams.update({s: f.last for s, f in self._follows.items()})
        reply: Any = await self.redis.xread(streams, block=self.block_ms, count=COUNT)
        out = []
        for raw_stream, entries in reply or []:
            if _text(raw_stream) == self.wake_key:
                if entries:
                    self._wake_last = _text(entries[-1][0])
            else:
                out.append((raw_stream, entries))
        return out

    async def _read_cluster(self) -> list[Any]:
        """A cluster: one non-blocking XREAD per slot, all in one pipeline. Each read is a
        tiny script so the client routes it by its declared keys (a bare XREAD would
        cost the client a COMMAND GETKEYS round trip to find its slot)."""
        by_slot: dict[int, dict[str, str]] = {}
        for stream, follow in self._follows.items():
            by_slot.setdefault(key_slot(stream.encode()), {})[stream] = follow.last
        assert isinstance(self.redis, RedisCluster)
        async with self.redis.pipeline(transaction=False) as pipe:
            for streams in by_slot.values():
                pipe.eval(_XREAD, len(streams), *streams, COUNT, *streams.values())
            replies: list[Any] = await pipe.execute()
        out = []
        for reply in replies:
            for raw_stream, raw_entries in reply or []:
                entries = [(entry_id, _pairs(flat)) for entry_id, flat in raw_entries]
                out.append((raw_stream, entries))
        return out

    async def _deliver(self, stream: str, entries: list[Any]) -> None:
        follow = self._follows.get(stream)
        for entry_id, fields in entries:
            if follow is None or self._follows.get(stream) is not follow:
                return  # unfollowed or followed anew meanwhile
            follow.last = _text(entry_id)
            raw = fields.get(b"phase", fields.get("phase"))
            try:
                done = await follow.handler(None if raw is None else _text(raw))
            except Exception:  # one match's handler must not stop the others
                log.exception("phase handler failed", extra={"stream": stream})
                continue
            if done:
                if self._follows.get(stream) is follow:
                    del self._follows[stream]
                return


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed: %s", task.get_name(), exc_info=task.exception())
