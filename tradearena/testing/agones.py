"""A stand-in for the Agones SDK sidecar: its REST gateway over one GameServer.

Agones itself (a Go controller and sidecar) is not run here; this speaks the same
paths and JSON as the sidecar's grpc-gateway (proto field names, int64 as strings,
errors as HTTP 500 `{"code": 2, "message": "<reason>. ..."}` as the sidecar's plain
errors come out) and keeps a GameServer the way the sidecar reports it:

    status.state   Scheduled -> Ready -> Reserved / Allocated -> Shutdown
    object_meta    labels / annotations set through the SDK get `agones.dev/sdk-`
    status.counters / status.lists   declared up front (as a Fleet's template does)

Changes apply at once (the real sidecar batches them about once a second).
`allocate_by_allocation()` changes the GameServer from outside, as a
GameServerAllocation does, and every change goes to the open watch streams.

The port is bound at construction but nothing listens until `start()`: a client
pointed at it meanwhile is refused, as by a sidecar that starts late.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tradearena.contracts import agones

SDK_PREFIX = "agones.dev/sdk-"
LIST_MAX_CAPACITY = agones.LIST_MAX_CAPACITY
_UNKNOWN = 2  # gRPC code Unknown: what the sidecar's errors.Errorf turn into


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any


@dataclass
class _Counter:
    count: int
    capacity: int


@dataclass
class _List:
    capacity: int
    values: list[str]


class _RefusedError(Exception):
    pass


def _int64(value: Any) -> int:
    """protojson takes an int64 as a string or a number."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _RefusedError(f"invalid argument. not an int64: {value!r}")
    try:
        return int(value)
    except ValueError as exc:
        raise _RefusedError(f"invalid argument. not an int64: {value!r}") from exc


class AgonesSidecar:
    def __init__(
        self,
        name: str = "gameserver-0",
        *,
        namespace: str = "default",
        counters: Mapping[str, tuple[int, int]] | None = None,  # name -> (count, capacity)
        lists: Mapping[str, int] | None = None,  # name -> capacity
        labels: Mapping[str, str] | None = None,
        game_port: int = 7654,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.state = "Scheduled"
        self.labels: dict[str, str] = dict(labels or {})
        self.annotations: dict[str, str] = {}
        self.counters = {k: _Counter(c, cap) for k, (c, cap) in (counters or {}).items()}
        self.lists = {k: _List(cap, []) for k, cap in (lists or {}).items()}
        self.game_port = game_port
        self.calls: list[Call] = []
        self.health_pings = 0
        self._generation = 1
        self._created = int(time.time())
        self._changed = asyncio.Event()
        self._watchers: list[asyncio.Queue[dict[str, Any] | None]] = []
        self._reserve_timer: asyncio.TimerHandle | None = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._runner: web.AppRunner | None = None

    # --- running ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_post("/ready", self._lifecycle("Ready"))
        r.add_post("/allocate", self._lifecycle("Allocated"))
        r.add_post("/shutdown", self._lifecycle("Shutdown"))
        r.add_post("/health", self._health)
        r.add_post("/reserve", self._reserve)
        r.add_put("/metadata/label", self._metadata(self.labels))
        r.add_put("/metadata/annotation", self._metadata(self.annotations))
        r.add_get("/gameserver", self._game_server)
        r.add_get("/watch/gameserver", self._watch)
        r.add_get("/v1beta1/counters/{name}", self._get_counter)
        r.add_patch("/v1beta1/counters/{name}", self._update_counter)
        r.add_get("/v1beta1/lists/{name}", self._get_list)
        r.add_patch("/v1beta1/lists/{name}", self._update_list)
        # aiohttp's router would read ":addValue" as part of {name}: split it ourselves.
        r.add_post("/v1beta1/lists/{name_verb}", self._list_verb)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def stop(self) -> None:
        self.drop_watches()
        if self._reserve_timer is not None:
            self._reserve_timer.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        else:
            self._sock.close()

    async def __aenter__(self) -> AgonesSidecar:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # --- what tests look at and do ----------------------------------------------------

    def paths(self) -> list[str]:
        return [c.path for c in self.calls]

    def bodies(self, path: str, method: str | None = None) -> list[Any]:
        """What was sent to `path` (with `method`, if given), in order."""
        return [c.body for c in self.calls if c.path == path and method in (None, c.method)]

    async def until(self, check: Callable[[], bool], within: float = 20) -> None:
        """Wait (no polling: every call and change wakes it) until `check()` holds."""

        async def seek() -> None:
            while not check():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(seek(), within)

    async def wait_for(self, path: str, within: float = 20) -> None:
        await self.until(lambda: path in self.paths(), within)

    def allocate_by_allocation(
        self,
        *,
        counters: Mapping[str, int] | None = None,
        list_values: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """What a GameServerAllocation does to a Ready (or Allocated) GameServer: state
        Allocated, Counter increments and List values (`counters` / `lists` actions)."""
        for name, amount in (counters or {}).items():
            c = self.counters[name]
            c.count = max(0, min(c.capacity, c.count + amount))
        for name, values in (list_values or {}).items():
            lst = self.lists[name]
            for v in values:
                if v not in lst.values and len(lst.values) < lst.capacity:
                    lst.values.append(v)
        self._set_state("Allocated")

    def drop_watches(self) -> None:
        """End every open watch stream (as a sidecar restart or a proxy would)."""
        for q in self._watchers:
            q.put_nowait(None)

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def game_server(self) -> dict[str, Any]:
        """The GameServer as the gateway renders it (sdk.proto GameServer)."""
        return {
            "object_meta": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": f"uid-{self.name}",
                "resource_version": str(self._generation),
                "generation": str(self._generation),
                "creation_timestamp": str(self._created),
                "deletion_timestamp": "0",
                "annotations": dict(self.annotations),
                "labels": dict(self.labels),
            },
            "spec": {
                "health": {
                    "disabled": False,
                    "period_seconds": 5,
                    "failure_threshold": 3,
                    "initial_delay_seconds": 0,
                }
            },
            "status": {
                "state": self.state,
                "address": "127.0.0.1",
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "ports": [{"name": "default", "port": self.game_port}],
                "players": None,
                "counters": {
                    k: {"count": str(c.count), "capacity": str(c.capacity)}
                    for k, c in self.counters.items()
                },
                "lists": {
                    k: {"capacity": str(lst.capacity), "values": list(lst.values)}
                    for k, lst in self.lists.items()
                },
            },
        }

    # --- internals --------------------------------------------------------------------

    def _changed_now(self) -> None:
        self._generation += 1
        snapshot = self.game_server()
        for q in self._watchers:
            q.put_nowait(snapshot)
        self._changed.set()

    def _set_state(self, state: str) -> None:
        if self.state == "Shutdown":
            return  # final
        if self._reserve_timer is not None:
            self._reserve_timer.cancel()
            self._reserve_timer = None
        self.state = state
        self._changed_now()

    async def _record(self, request: web.Request) -> Any:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw.strip() else None
        self.calls.append(Call(request.method, request.path, body))
        self._changed.set()
        return body

    def _lifecycle(self, state: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            await self._record(request)
            self._set_state(state)
            return web.json_response({})

        return handle

    async def _health(self, request: web.Request) -> web.Response:
        await self._record(request)
        self.health_pings += 1
        return web.json_response({})

    async def _reserve(self, request: web.Request) -> web.Response:
        body = await self._record(request) or {}
        try:
            seconds = _int64(body.get("seconds", 0))
        except _RefusedError as exc:
            return _refusal(str(exc))
        self._set_state("Reserved")
        if seconds > 0:
            self._reserve_timer = asyncio.get_running_loop().call_later(seconds, self._reserve_over)
        return web.json_response({})

    def _reserve_over(self) -> None:
        self._reserve_timer = None
        if self.state == "Reserved":
            self._set_state("Ready")

    def _metadata(self, into: dict[str, str]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            body = await self._record(request) or {}
            into[SDK_PREFIX + str(body.get("key", ""))] = str(body.get("value", ""))
            self._changed_now()
            return web.json_response({})

        return handle

    async def _game_server(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(self.game_server())

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        queue.put_nowait(self.game_server())  # the current GameServer first, as Agones does
        self._watchers.append(queue)
        self._changed.set()
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            while (item := await queue.get()) is not None:
                await resp.write(json.dumps({"result": item}).encode() + b"\n")
        finally:
            self._watchers.remove(queue)
            self._changed.set()
        return resp

    async def _get_counter(self, request: web.Request) -> web.Response:
        await self._record(request)
        name = request.match_info["name"]
        c = self.counters.get(name)
        if c is None:
            return _refusal(f"counter not found: {name}")
        return web.json_response({"name": name, "count": str(c.count), "capacity": str(c.capacity)})

    async def _update_counter(self, request: web.Request) -> web.Response:
        body = await self._record(request) or {}
        name = request.match_info["name"]
        try:
            diff = _int64(body.get("countDiff", 0))
            count = _int64(body["count"]) if body.get("count") is not None else None
            capacity = _int64(body["capacity"]) if body.get("capacity") is not None else None
            if diff == 0 and count is None and capacity is None:
                raise _RefusedError(f"invalid argument. Malformed CounterUpdateRequest: {body}")
            c = self.counters.get(name)
            if c is None:
                raise _RefusedError(f"counter not found: {name}")
            new_capacity = c.capacity if capacity is None else capacity
            if new_capacity < 0:
                raise _RefusedError(
                    f"out of range. Capacity must be >= 0. Found Capacity: {capacity}"
                )
            new_count = c.count if count is None else count
            if not 0 <= new_count <= new_capacity:
                raise _RefusedError(
                    f"out of range. Count must be within range [0,Capacity]. "
                    f"Found Count: {new_count}, Capacity: {new_capacity}"
                )
            new_count += diff
            if not 0 <= new_count <= new_capacity:
                raise _RefusedError(
                    f"out of range. Count must be within range [0,Capacity]. "
                    f"Found Count: {new_count}, Capacity: {new_capacity}"
                )
        except _RefusedError as exc:
            return _refusal(str(exc))
        c.count, c.capacity = new_count, new_capacity
        self._changed_now()
        # The sidecar queues the change and answers with an empty Counter.
        return web.json_response({"name": "", "count": "0", "capacity": "0"})

    async def _get_list(self, request: web.Request) -> web.Response:
        await self._record(request)
        name = request.match_info["name"]
        lst = self.lists.get(name)
        if lst is None:
            return _refusal(f"list not found: {name}")
        return web.json_response(
            {"name": name, "capacity": str(lst.capacity), "values": list(lst.values)}
        )

    async def _update_list(self, request: web.Request) -> web.Response:
        body = await self._record(request) or {}
        name = request.match_info["name"]
        lst = self.lists.get(name)
        try:
            # grpc-gateway fills the update mask from the fields present in the body.
            capacity = _int64(body["capacity"]) if "capacity" in body else _capacity_of(lst)
            if not 0 <= capacity <= LIST_MAX_CAPACITY:
                raise _RefusedError(
                    f"out of range. Capacity must be within range [0,1000]. Found Capacity: {capacity}"
                )
            if lst is None:
                raise _RefusedError(f"not found. {name} List not found")
        except _RefusedError as exc:
            return _refusal(str(exc))
        lst.capacity = capacity
        if "values" in body:
            lst.values = list(dict.fromkeys(str(v) for v in body["values"] or []))
        lst.values = lst.values[: lst.capacity]
        self._changed_now()
        return web.json_response({"name": "", "capacity": "0", "values": []})

    async def _list_verb(self, request: web.Request) -> web.Response:
        body = await self._record(request) or {}
        name, _, verb = request.match_info["name_verb"].rpartition(":")
        if verb not in ("addValue", "removeValue") or not name:
            raise web.HTTPNotFound()
        lst = self.lists.get(name)
        if lst is None:
            return _refusal(f"list not found: {name}")
        value = str(body.get("value", ""))
        if verb == "addValue":
            if len(lst.values) >= lst.capacity:
                return _refusal(
                    f"out of range. No available capacity. Current Capacity: {lst.capacity}, "
                    f"List Size: {len(lst.values)}"
                )
            if value in lst.values:
                return _refusal(f"already exists. Value: {value} already in List: {name}")
            lst.values.append(value)
        else:
            if value not in lst.values:
                return _refusal(f"not found. Value: {value} not found in List: {name}")
            lst.values.remove(value)
        self._changed_now()
        return web.json_response({"name": "", "capacity": "0", "values": []})


def _capacity_of(lst: _List | None) -> int:
    return lst.capacity if lst is not None else 0


def _refusal(message: str) -> web.Response:
    return web.json_response({"code": _UNKNOWN, "message": message, "details": []}, status=500)
