"""A real trace backend for tests: Jaeger v2 (OTLP in, traces in memory, query API out).

``scripts/build-jaeger.sh`` (``make jaeger``) builds it from the Go module pinned in
hack/jaeger into ``~/.cache/tradearena/jaeger/<version>/bin``; ``start_jaeger`` runs it
with deploy/jaeger/config.yaml on free loopback ports. Processes export to it with
``Jaeger.otel_env()`` in their environment; tests read traces back through the query
API (``/api/v3/traces/<trace id>``, OTLP JSON) as flat `SpanView`s.

    jaeger = start_jaeger(tmp_path)
    env = {**os.environ, **jaeger.otel_env()}
    ... run processes with env ...
    spans = await jaeger.wait_for_trace(trace_id, lambda spans: len(spans) > 3)
    jaeger.stop()
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tradearena.launcher.localservices import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-jaeger.sh"
CONFIG = REPO / "deploy" / "jaeger" / "config.yaml"


class JaegerMissingError(RuntimeError):
    """The locally built Jaeger is not there (run `make jaeger`)."""


def jaeger_binary() -> Path:
    out = subprocess.run(
        [str(BUILD_SCRIPT), "--print-bin-dir"], capture_output=True, text=True, check=True
    )
    path = Path(out.stdout.strip()) / "jaeger"
    if not path.is_file():
        raise JaegerMissingError(f"{path} is missing: run `make jaeger` (scripts/build-jaeger.sh)")
    return path


def _hex_id(value: str, length: int) -> str:
    """OTLP JSON ids are hex; some encoders give base64: normalise to hex."""
    if len(value) == length and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    return base64.b64decode(value).hex() if value else ""


def _attributes(raw: list[dict[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in raw or []:
        value = item.get("value") or {}
        out[item["key"]] = next(iter(value.values()), None) if value else None
    return out


@dataclass(frozen=True)
class SpanView:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]  # (trace id, span id) of each linked span


def spans_of(otlp: dict[str, Any]) -> list[SpanView]:
    """Flat spans of an OTLP JSON document (`resourceSpans`, as the v3 API answers)."""
    out: list[SpanView] = []
    for resource_spans in otlp.get("resourceSpans", []):
        resource = _attributes((resource_spans.get("resource") or {}).get("attributes"))
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                out.append(
                    SpanView(
                        trace_id=_hex_id(span["traceId"], 32),
                        span_id=_hex_id(span["spanId"], 16),
                        parent_span_id=_hex_id(span.get("parentSpanId") or "", 16),
                        name=span["name"],
                        service=service,
                        attributes=_attributes(span.get("attributes")),
                        links=tuple(
                            (_hex_id(link["traceId"], 32), _hex_id(link["spanId"], 16))
                            for link in span.get("links") or []
                        ),
                    )
                )
    return out


@dataclass
class Jaeger:
    proc: subprocess.Popen[bytes]
    otlp_http_port: int
    query_port: int
    log_path: Path
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    @property
    def otlp_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"

    def otel_env(self, actions_ratio: float = 1.0) -> dict[str, str]:
        """The standard OTEL_* settings that send a process's spans here, quickly."""
        return {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "TRADEARENA_TRACE_ACTIONS_RATIO": str(actions_ratio),
        }

    async def trace(self, trace_id: str) -> list[SpanView]:
        """Every span the backend holds of one trace (empty if it knows none)."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.query_url}/api/v3/traces/{trace_id}") as resp,
        ):
            if resp.status == 404:
                return []
            resp.raise_for_status()
            body = await resp.json(content_type=None)
        return spans_of(body.get("result") or {})

    async def wait_for_trace(
        self,
        trace_id: str,
        complete: Callable[[list[SpanView]], bool],
        within: float = 30,
    ) -> list[SpanView]:
        """The trace once `complete(spans)` holds (spans arrive in batches)."""
        spans: list[SpanView] = []
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            spans = await self.trace(trace_id)
            if complete(spans):
                return spans
            await asyncio.sleep(0.25)  # exporters flush in batches: poll with a deadline
        names = sorted({(s.service, s.name) for s in spans})
        raise AssertionError(f"trace {trace_id} incomplete after {within} s: {names}")

    async def services(self) -> list[str]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.query_url}/api/services") as resp,
        ):
            body = await resp.json(content_type=None)
        return sorted(body.get("data") or [])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_jaeger(workdir: Path, timeout: float = 30) -> Jaeger:
    """Jaeger on free loopback ports, answering its query API."""
    binary = jaeger_binary()
    ports = {name: free_port() for name in ("otlp_grpc", "otlp_http", "query_http", "query_grpc")}
    env = {
        **os.environ,
        "JAEGER_OTLP_GRPC_PORT": str(ports["otlp_grpc"]),
        "JAEGER_OTLP_HTTP_PORT": str(ports["otlp_http"]),
        "JAEGER_QUERY_HTTP_PORT": str(ports["query_http"]),
        "JAEGER_QUERY_GRPC_PORT": str(ports["query_grpc"]),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "jaeger.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "--config", str(CONFIG)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    jaeger = Jaeger(proc, ports["otlp_http"], ports["query_http"], log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jaeger exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{jaeger.query_url}/api/services", timeout=1):
                return jaeger
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)  # starting: poll with a deadline
    jaeger.stop()
    raise RuntimeError(f"jaeger did not answer in {timeout} s:\n{log_path.read_text()}")


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[Jaeger]:
    """A Jaeger of its own for one test. Fails, never skips, if the binary is missing:
    `make test` builds it (`make jaeger`)."""
    backend = start_jaeger(tmp_path / "jaeger")
    try:
        yield backend
    finally:
        backend.stop()
