"""`up`'s Prometheus scrape targets: a file_sd file in the data directory.

`prometheus-targets.json` lists every /metrics endpoint `up` runs (the lobby, the feed
relay, the results worker, and each match server's admin port, kept up to date as servers
come and go), in Prometheus' file-based service discovery format, one group per component:

    scrape_configs:
      - job_name: tradearena
        file_sd_configs: [{files: [/path/to/var/prometheus-targets.json]}]

It is rewritten atomically, and only when the set of targets changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

FILE_NAME = "prometheus-targets.json"
LOBBY = "lobby"
FEED_RELAY = "feed-relay"
RESULTS_WORKER = "results-worker"
MATCH_SERVER = "match-server"


def scrape_address(host: str, port: int) -> str:
    """Where a local scraper reaches a server that binds `host` (any address: loopback)."""
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - not a bind
    return f"[{reach}]:{port}" if ":" in reach else f"{reach}:{port}"


def file_sd(targets: Mapping[str, Sequence[str]]) -> list[dict[str, object]]:
    """file_sd groups: one per component (label `component`), targets sorted."""
    return [
        {"targets": sorted(addresses), "labels": {"component": component}}
        for component, addresses in sorted(targets.items())
        if addresses
    ]


def write_if_changed(path: Path, groups: list[dict[str, object]]) -> bool:
    text = json.dumps(groups, indent=2) + "\n"
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # Prometheus never reads half a file
    return True


async def keep_targets(
    path: Path,
    fixed: Mapping[str, Sequence[str]],
    match_servers: Callable[[], Sequence[str]],
    stop: asyncio.Event,
    interval_s: float = 1.0,
) -> None:
    """Write the targets now, then again whenever the match servers change."""
    while True:
        write_if_changed(path, file_sd({**fixed, MATCH_SERVER: match_servers()}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if stop.is_set():
            return
