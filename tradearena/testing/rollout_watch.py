"""What players and match servers see while a release rolls: background watchers.

`LobbyPoller` asks the lobby (through the ingress, a new connection each time, as a
player's browser does) again and again and keeps every answer; `FeedRecorder` reads
a symbol's feed stream as a match server does (XREAD, blocking) and keeps each tick's
arrival time, stream ID and publishing replica, and who holds the symbol's lease over
time. Both run in threads between `with` and its end; the test then asserts on what they
saw (no failed request, no gap a match would call stale), and `gap_report` says where a
gap came from (a handover, and whether the lease was released or ran out, or one
publisher's pause).
"""

from __future__ import annotations

import http.client
import itertools
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self, cast

from tradearena.contracts import keys

Entries = list[tuple[str, list[tuple[str, dict[str, str]]]]]  # XREAD's reply, decoded


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `host` (SNI, certificate check, Host header) at a fixed address."""

    def __init__(self, host: str, address: tuple[str, int], context: ssl.SSLContext) -> None:
        super().__init__(host, address[1], context=context, timeout=5)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        raw = socket.create_connection(self._address, self.timeout)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self.host)


@dataclass
class LobbyPoller:
    """GET each of `paths` in turn every `interval_s` until the `with` block ends."""

    host: str
    address: tuple[str, int]
    ca_file: Path
    paths: tuple[str, ...] = ("/readyz",)
    interval_s: float = 0.1
    answers: list[tuple[float, str, int]] = field(default_factory=list)  # (t, path, status)
    errors: list[tuple[float, str, str]] = field(default_factory=list)  # (t, path, error)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="lobby-poller", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        n = 0
        while not self._stop.is_set():
            path = self.paths[n % len(self.paths)]
            n += 1
            conn = _PinnedHTTPSConnection(self.host, self.address, context)
            try:
                conn.request("GET", path, headers={"Connection": "close"})
                reply = conn.getresponse()
                reply.read()
                self.answers.append((time.monotonic(), path, reply.status))
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append((time.monotonic(), path, repr(exc)))
            finally:
                conn.close()
            self._stop.wait(self.interval_s)

    @property
    def failures(self) -> list[tuple[float, str, str]]:
        """Every request that did not get a 2xx: errors and non-2xx answers."""
        bad = [(t, p, f"HTTP {s}") for t, p, s in self.answers if not 200 <= s < 300]
        return sorted(bad + self.errors)


@dataclass
class FeedRecorder:
    """Every tick of `symbol`'s feed stream published while the `with` block runs."""

    redis_url: str
    symbol: str
    # (arrival, stream ID, the relay replica that published it)
    ticks: list[tuple[float, str, str]] = field(default_factory=list)
    leases: list[tuple[float, str | None]] = field(default_factory=list)  # holder changes
    lease_poll_s: float = 0.05
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lease_thread: threading.Thread | None = None
    _started: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="feed-recorder", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise TimeoutError("the feed recorder did not connect to Redis")
        self._lease_thread = threading.Thread(
            target=self._watch_lease, name="feed-lease-watch", daemon=True
        )
        self._lease_thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in (self._thread, self._lease_thread):
            if thread is not None:
                thread.join(timeout=15)
        if self._error is not None and kind is None:
            raise RuntimeError(f"the feed recorder failed: {self._error!r}") from self._error

    def _run(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=5, decode_responses=True)
        stream = keys.feed_stream(self.symbol)
        try:
            last = "$"
            client.ping()
            self._started.set()
            while not self._stop.is_set():
                reply = cast(Entries, client.xread({stream: last}, block=250))
                now = time.monotonic()
                for _, entries in reply or []:
                    for entry_id, fields in entries:
                        last = str(entry_id)
                        self.ticks.append((now, last, str(fields.get("relay", "?"))))
        except Exception as exc:  # reported on exit: a recorder that died saw nothing
            self._error = exc
        finally:
            self._started.set()
            client.close()

    def _watch_lease(self) -> None:
        """Diagnostics only (`gap_report`): a failed poll is skipped, never an error."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=5, decode_responses=True)
        lease = keys.feed_leader(self.symbol)
        holder: str | None = ""
        try:
            while not self._stop.is_set():
                try:
                    now_holder = cast(str | None, client.get(lease))
                except redis.RedisError:
                    now_holder = holder
                if now_holder != holder:
                    holder = now_holder
                    self.leases.append((time.monotonic(), holder))
                self._stop.wait(self.lease_poll_s)
        finally:
            client.close()

    def gap_report(self) -> str:
        """The largest arrival gap: who published either side, and the lease around it."""
        if len(self.ticks) < 2:
            return f"{len(self.ticks)} ticks"
        arrivals = [t for t, _, _ in self.ticks]
        i = max(range(1, len(arrivals)), key=lambda k: arrivals[k] - arrivals[k - 1])
        (t0, id0, by0), (t1, id1, by1) = self.ticks[i - 1], self.ticks[i]
        around = [
            f"{(t - t0) * 1000:+.0f} ms {holder or '(none)'}"
            for t, holder in self.leases
            if t0 - 3 <= t <= t1 + 1
        ]
        return (
            f"largest gap {(t1 - t0) * 1000:.0f} ms: {id0} by {by0} then"
            f" {id1} by {by1}; lease holder changes from the last tick"
            f" before it: {around or 'none'}"
        )

    def largest_gaps_ms(self) -> tuple[int, int]:
        """(between consecutive ticks' event times, between their arrivals here), in ms."""
        events = [int(i.split("-")[0]) for _, i, _ in self.ticks]
        arrivals = [t for t, _, _ in self.ticks]
        event_gap = max((b - a for a, b in itertools.pairwise(events)), default=0)
        arrival_gap = max((b - a for a, b in itertools.pairwise(arrivals)), default=0)
        return event_gap, round(arrival_gap * 1000)
