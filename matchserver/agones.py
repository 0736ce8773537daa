"""The Agones SDK over its REST gateway (the sidecar on localhost:AGONES_SDK_HTTP_PORT).

Wire shapes follow Agones' `sdk.proto` and `beta.proto` through grpc-gateway: JSON
with the proto field names, int64 values as strings (`{"seconds": "5"}`,
`{"count": "3"}`), errors as `{"code", "message"}` with an HTTP status.

Two kinds of call:
- Reports (ready, health, shutdown, reserve, allocate, set_label, set_annotation,
  update_counter, update_list, list_add, list_remove) never raise for the sidecar's
  sake: a failure is logged, counted and returned as False, so a sidecar that refuses
  or is gone never stops a match. `ready()` alone waits for a sidecar that starts after
  the server (Agones warns it may), retrying with exponential backoff.
- Queries (game_server, get_counter, get_list) raise `AgonesError` (`AgonesUnavailableError`
  when nothing answers): there is no value to return in their place. `watch()` yields
  every GameServer update and reconnects on its own when the stream drops.

The sidecar applies Counter and List changes in batches and answers an update with an
empty object, so updates report only success; read back with get_counter / get_list.
Its errors carry the gRPC code Unknown (HTTP 500) with the reason as the message's
first words ("already exists.", "not found.", "out of range."); `list_add` of a value
already there and `list_remove` of a value not there are the wanted state, so success.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter
from tenacity import RetryCallState

from tradearena.retry import RestartBudget, call_with_retries

log = logging.getLogger(__name__)

# GameServer.status.state values (agones.dev/v1 GameServerState) the SDK moves between.
SCHEDULED = "Scheduled"
READY = "Ready"
RESERVED = "Reserved"
ALLOCATED = "Allocated"
SHUTDOWN = "Shutdown"

_EMPTY: Mapping[str, Any] = {}


class AgonesError(Exception):
    """The sidecar refused a call (`status` is its HTTP status, `message` its reason)."""

    def __init__(self, call: str, status: int | None, message: str) -> None:
        super().__init__(f"agones {call}: {status or 'no answer'} {message}".rstrip())
        self.call = call
        self.status = status
        self.message = message


class AgonesUnavailableError(AgonesError):
    """Nothing answered (not started yet, gone, or its gRPC side not up: HTTP 503)."""


def _int(value: Any) -> int:
    """An int64 of the gateway's JSON: a string, a number, or absent (zero)."""
    return int(value) if value not in (None, "") else 0


def counter_of(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A Counter (beta.Counter, or a GameServer's status.counters entry) as plain ints."""
    return {"name": name, "count": _int(raw.get("count")), "capacity": _int(raw.get("capacity"))}


def list_of(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A List (beta.List, or a GameServer's status.lists entry) as plain values."""
    return {
        "name": name,
        "capacity": _int(raw.get("capacity")),
        "values": list(raw.get("values") or []),
    }


def state_of(game_server: Mapping[str, Any]) -> str:
    """The GameServer's status.state ("" when absent)."""
    return str((game_server.get("status") or _EMPTY).get("state") or "")


class AgonesSDK:
    def __init__(
        self,
        port: int,
        session: aiohttp.ClientSession,
        *,
        registry: CollectorRegistry | None = None,
        host: str = "127.0.0.1",
        timeout_s: float = 2.0,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 2.0,
    ) -> None:
        self.base = f"http://{host}:{port}"
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.calls = Counter(
            "tradearena_agones_sdk_calls_total",
            "Agones SDK calls by call and outcome (ok, refused, unavailable)",
            ["call", "outcome"],
            registry=registry,
        )
        self.watch_reconnects = Counter(
            "tradearena_agones_sdk_watch_reconnects_total",
            "GameServer watch streams opened again after a drop",
            registry=registry,
        )

    # --- the wire -------------------------------------------------------------------

    async def _call(
        self, call: str, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        """One request; its JSON answer, or AgonesError / AgonesUnavailableError."""
        try:
            async with self.session.request(
                method,
                f"{self.base}{path}",
                json=dict(body) if body is not None else None,
                timeout=self.timeout,
            ) as resp:
                status = resp.status
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.calls.labels(call, "unavailable").inc()
            raise AgonesUnavailableError(call, None, repr(exc)) from exc
        if status == 200:
            try:
                answer = json.loads(text) if text.strip() else {}
            except ValueError as exc:
                self.calls.labels(call, "refused").inc()
                raise AgonesError(call, status, f"not JSON: {text[:200]!r}") from exc
            self.calls.labels(call, "ok").inc()
            return answer
        message = _error_message(text)
        if status == 503:
            self.calls.labels(call, "unavailable").inc()
            raise AgonesUnavailableError(call, status, message)
        self.calls.labels(call, "refused").inc()
        raise AgonesError(call, status, message)

    async def _report(
        self,
        call: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        fine: Callable[[AgonesError], Awaitable[bool]] | None = None,
    ) -> bool:
        """A report: True once the sidecar took it; a failure is logged, never raised.
        `fine` says whether a refusal still leaves the wanted state (then True)."""
        try:
            await self._call(call, method, path, body)
        except AgonesError as exc:
            if fine is not None and await fine(exc):
                return True
            log.warning(
                "agones sdk call failed",
                extra={"call": call, "path": path, "status": exc.status, "error": exc.message},
            )
            return False
        return True

    # --- lifecycle --------------------------------------------------------------------

    async def ready(self, *, within_s: float | None = None) -> bool:
        """Mark the GameServer Ready, waiting for a sidecar that is not up yet (retries with
        exponential backoff until it answers, or `within_s` passes: then False). A refusal
        by a sidecar that answered is not retried."""
        started = time.monotonic()

        def stop(_: RetryCallState) -> bool:
            return within_s is not None and time.monotonic() - started >= within_s

        def on_retry(state: RetryCallState) -> None:
            if state.attempt_number in (1, 10) or state.attempt_number % 50 == 0:
                log.info(
                    "agones sidecar not answering yet",
                    extra={"attempt": state.attempt_number, "base": self.base},
                )

        try:
            await call_with_retries(
                lambda: self._call("ready", "POST", "/ready", {}),
                retry_on=lambda exc: isinstance(exc, AgonesUnavailableError),
                initial_s=self.retry_initial_s,
                max_s=self.retry_max_s,
                stop=stop,
                on_retry=on_retry,
            )
        except AgonesError as exc:
            log.warning(
                "agones ready failed",
                extra={"status": exc.status, "error": exc.message, "base": self.base},
            )
            return False
        return True

    async def health(self) -> bool:
        return await self._report("health", "POST", "/health", {})

    async def health_loop(self, interval_s: float) -> None:
        """Health every `interval_s` until cancelled (a failed ping is logged only)."""
        while True:
            await self.health()
            await asyncio.sleep(interval_s)

    async def shutdown(self) -> bool:
        return await self._report("shutdown", "POST", "/shutdown", {})

    async def reserve(self, seconds: int) -> bool:
        """Reserved for `seconds` (0: until allocated or made Ready again)."""
        return await self._report("reserve", "POST", "/reserve", {"seconds": str(int(seconds))})

    async def allocate(self) -> bool:
        """Mark itself Allocated (a GameServerAllocation is the usual way)."""
        return await self._report("allocate", "POST", "/allocate", {})

    # --- metadata ---------------------------------------------------------------------

    async def set_label(self, key: str, value: str) -> bool:
        """Label `agones.dev/sdk-<key>` on the GameServer (key and value must be valid
        Kubernetes label parts: the sidecar takes the call and fails on the patch)."""
        return await self._report(
            "set_label", "PUT", "/metadata/label", {"key": key, "value": value}
        )

    async def set_annotation(self, key: str, value: str) -> bool:
        """Annotation `agones.dev/sdk-<key>` on the GameServer."""
        return await self._report(
            "set_annotation", "PUT", "/metadata/annotation", {"key": key, "value": value}
        )

    # --- configuration ----------------------------------------------------------------

    async def game_server(self) -> dict[str, Any]:
        """The GameServer as the sidecar has it (object_meta, spec, status)."""
        answer = await self._call("game_server", "GET", "/gameserver")
        return dict(answer)

    async def watch(self) -> AsyncIterator[dict[str, Any]]:
        """Every GameServer the sidecar sends (the current one first on each connection),
        until the consumer stops; a dropped or refused stream is opened again after a
        backoff that grows with recent failures."""
        budget = RestartBudget(self.retry_initial_s, self.retry_max_s, max_failures=1_000_000)
        url = f"{self.base}/watch/gameserver"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout.total)
        opened = False
        while True:
            if opened:
                self.watch_reconnects.inc()
            opened = True
            try:
                async with self.session.get(url, timeout=timeout) as resp:
                    if resp.status != 200:
                        raise AgonesError("watch", resp.status, _error_message(await resp.text()))
                    self.calls.labels("watch", "ok").inc()
                    async for item in _json_lines(resp):
                        if "error" in item:
                            raise AgonesError("watch", None, _error_message(json.dumps(item)))
                        result = item.get("result")
                        if isinstance(result, dict):
                            yield result
                reason = "stream ended"
            except AgonesError as exc:
                self.calls.labels("watch", "refused").inc()
                reason = str(exc)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.calls.labels("watch", "unavailable").inc()
                reason = repr(exc)
            delay = budget.failed(time.monotonic())
            log.info("agones watch reconnecting", extra={"reason": reason, "delay_s": delay})
            await asyncio.sleep(delay)

    # --- counters and lists (beta) ----------------------------------------------------

    async def get_counter(self, name: str) -> dict[str, Any]:
        """{"name", "count", "capacity"} (ints), with the sidecar's pending batch applied."""
        answer = await self._call("get_counter", "GET", f"/v1beta1/counters/{name}")
        return counter_of(answer, name)

    async def update_counter(
        self,
        name: str,
        *,
        count: int | None = None,
        capacity: int | None = None,
        count_diff: int | None = None,
    ) -> bool:
        """Set the Counter's count and/or capacity, or move its count by `count_diff`
        (the sidecar checks 0 <= count <= capacity against the new capacity)."""
        body: dict[str, str] = {}
        if count is not None:
            body["count"] = str(int(count))
        if capacity is not None:
            body["capacity"] = str(int(capacity))
        if count_diff:
            body["countDiff"] = str(int(count_diff))
        if not body:
            raise ValueError("update_counter needs count, capacity or a non-zero count_diff")
        return await self._report("update_counter", "PATCH", f"/v1beta1/counters/{name}", body)

    async def get_list(self, name: str) -> dict[str, Any]:
        """{"name", "capacity", "values"}, with the sidecar's pending batch applied."""
        answer = await self._call("get_list", "GET", f"/v1beta1/lists/{name}")
        return list_of(answer, name)

    async def update_list(self, name: str, *, capacity: int | None = None) -> bool:
        """Set the List's capacity (0..1000). Values are never sent here: an update with
        values replaces them all; list_add / list_remove change one at a time."""
        if capacity is None:
            raise ValueError("update_list needs capacity")
        return await self._report(
            "update_list", "PATCH", f"/v1beta1/lists/{name}", {"capacity": str(int(capacity))}
        )

    async def list_add(self, name: str, value: str) -> bool:
        """Add `value` to the List (already there: True; full: False, logged)."""
        return await self._report(
            "list_add",
            "POST",
            f"/v1beta1/lists/{name}:addValue",
            {"value": value},
            fine=lambda exc: self._holds(exc, name, value, present=True),
        )

    async def list_remove(self, name: str, value: str) -> bool:
        """Remove `value` from the List (not there: True)."""
        return await self._report(
            "list_remove",
            "POST",
            f"/v1beta1/lists/{name}:removeValue",
            {"value": value},
            fine=lambda exc: self._holds(exc, name, value, present=False),
        )

    async def _holds(self, exc: AgonesError, name: str, value: str, *, present: bool) -> bool:
        """Whether a refused add (remove) leaves `value` in (out of) the List anyway: the
        sidecar refuses a value already there, or checks capacity first, or one not there."""
        if isinstance(exc, AgonesUnavailableError):
            return False
        reason = exc.message.lower()
        if reason.startswith("already exists" if present else "not found. value"):
            return True
        try:
            values = (await self.get_list(name))["values"]
        except AgonesError:
            return False
        return (value in values) is present


def _error_message(text: str) -> str:
    """The reason of a grpc-gateway error body ({"code", "message"} or {"error": {...}})."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and "message" in inner:
            return str(inner["message"])
    return text.strip()[:200]


async def _json_lines(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """One JSON object per line of a streamed body, however the chunks fall (no line
    length limit: a GameServer with a long List is one long line)."""
    buffer = b""
    async for chunk in resp.content.iter_any():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                item = json.loads(line)
                if isinstance(item, dict):
                    yield item
    if buffer.strip():
        item = json.loads(buffer)
        if isinstance(item, dict):
            yield item
