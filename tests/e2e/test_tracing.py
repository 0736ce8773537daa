"""Tracing end to end: `tradearena up` and two bots exporting to a real Jaeger while the
bots play a one-minute duel; the query API then returns the match's trace (formation to
stored result) with spans from the lobby, the local runtime, the match server and the
results worker, linked both ways to each player's journey trace (the bot's round, over
HTTP to the lobby's queue join, to the start of play in the match server); and the JSON
log lines carry the trace ids."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from tradearena.contracts.tracing import (
    SERVICE_BOTS,
    SERVICE_FEED_RELAY,
    SERVICE_LOBBY,
    SERVICE_LOCAL_RUNTIME,
    SERVICE_MATCHSERVER,
    SERVICE_RESULTS_WORKER,
)
from tradearena.testing.platform import CLI, UpProcess, short_catalogue
from tradearena.testing.tracing_backend import Jaeger, SpanView

BOTS = 2


def json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


async def wait_for_log(
    path: Path, message: str, match_id: str, within: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in await asyncio.to_thread(json_lines, path):
            if line.get("message") == message and line.get("match_id") == match_id:
                return line
        await asyncio.sleep(0.25)  # another process writes it: poll with a deadline
    raise AssertionError(f"no {message!r} line for {match_id} in {path}")


def named(spans: list[SpanView], name: str) -> list[SpanView]:
    return [s for s in spans if s.name == name]


async def test_a_match_trace_links_the_players_journeys(
    tmp_path: Path, data_dir: Path, jaeger: Jaeger
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    traced = {**env, **jaeger.otel_env(actions_ratio=1.0)}
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"), env=traced)
    up.start()
    try:
        bots = await asyncio.create_subprocess_exec(
            CLI,
            *("bots", "--url", up.url, "--count", str(BOTS), "--mode", "duel"),
            *("--format", "blitz", "--prefix", "trace", "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=traced,  # each bot's round is the root of its player's journey
        )
        out, err = await asyncio.wait_for(bots.communicate(), 300)
        summary: dict[str, Any] = json.loads(out)
        assert bots.returncode == 0, (summary, err.decode()[-2000:])
        assert summary["actions"].get("ok", 0) > 0
        (match_id,) = summary["match_ids"]

        # Log lines carry the trace ids: the worker's store and the lobby's formation are
        # both in the match's trace.
        logs = data_dir / "var" / "logs"
        stored = await wait_for_log(logs / "results-worker.log", "result stored", match_id)
        match_trace = stored["trace_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", match_trace)
        assert re.fullmatch(r"[0-9a-f]{16}", stored["span_id"])
        ready = await wait_for_log(logs / "lobby.log", "match ready", match_id)
        assert ready["trace_id"] == match_trace

        def match_complete(spans: list[SpanView]) -> bool:
            names = {s.name for s in spans}
            return {"match.formation", "pool.allocate", "match", "results.store"} <= names and (
                len(named(spans, "player.connection")) >= BOTS
            )

        spans = await jaeger.wait_for_trace(match_trace, match_complete)
        services = {s.service for s in spans}
        assert {
            SERVICE_LOBBY,
            SERVICE_LOCAL_RUNTIME,
            SERVICE_MATCHSERVER,
            SERVICE_RESULTS_WORKER,
        } <= services
        by_id = {s.span_id: s for s in spans}
        (formation,) = named(spans, "match.formation")
        assert formation.parent_span_id == ""  # the match's trace starts at its formation
        (allocate,) = named(spans, "pool.allocate")
        (match,) = named(spans, "match")
        (store,) = named(spans, "results.store")
        # The chain: formation -> allocation -> match -> store, across four services.
        assert by_id[allocate.parent_span_id] is formation
        assert by_id[match.parent_span_id] is allocate
        assert by_id[store.parent_span_id] is match
        assert match.attributes["match.id"] == match_id
        connections = named(spans, "player.connection")
        assert all(by_id[c.parent_span_id] is match for c in connections)
        actions = named(spans, "match.action")  # ratio 1: every action has its span
        assert actions
        assert {by_id[a.parent_span_id].name for a in actions} == {"player.connection"}

        # The match links to one journey per player, each another trace.
        journeys = {trace_id for trace_id, _ in formation.links}
        assert len(journeys) == BOTS
        assert match_trace not in journeys
        for journey_trace in journeys:
            journey = await jaeger.wait_for_trace(
                journey_trace,
                lambda s: {"bot.round", "queue.wait", "player.connect"} <= {x.name for x in s},
            )
            journey_ids = {s.span_id: s for s in journey}
            (root,) = named(journey, "bot.round")  # the client's trace, over HTTP
            assert (root.service, root.parent_span_id) == (SERVICE_BOTS, "")
            (join,) = [s for s in journey if s.name == "POST /api/v1/queue"]
            assert join.service == SERVICE_LOBBY
            assert journey_ids[join.parent_span_id] is root
            (wait,) = named(journey, "queue.wait")
            assert journey_ids[wait.parent_span_id] is join
            assert wait.links == ((match_trace, formation.span_id),)
            connects = named(journey, "player.connect")
            assert {c.service for c in connects} == {SERVICE_MATCHSERVER}
            assert all(c.parent_span_id == wait.span_id for c in connects)
            # ... and the match's connection spans link back to these connects.
            linked = {link for c in connections for link in c.links}
            assert any((journey_trace, c.span_id) in linked for c in connects)
    finally:
        assert up.stop() == 0
    # The feed relay's leadership term ends when `up` stops it; its span is flushed on exit.
    deadline = time.monotonic() + 20
    while SERVICE_FEED_RELAY not in await jaeger.services():
        assert time.monotonic() < deadline, await jaeger.services()
        await asyncio.sleep(0.25)  # the exporter flushes as the process exits: poll
