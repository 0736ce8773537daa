"""The shipped alert rules, unchanged, in a real Prometheus scraping a running `up`.

Prometheus discovers `up`'s /metrics endpoints from the data directory's
prometheus-targets.json and evaluates charts/tradearena/files/prometheus-rules.yaml
(only its own scrape and evaluation intervals are short). Two bots start a duel; the
test freezes (SIGSTOP: `up` restarts a child that dies) the results worker while the duel
ends (cancelled by an operator), the feed relay and PostgreSQL, and waits for the three
alerts their absence must fire: the feed goes stale, the duel's result waits in the
stream, the lobby's PostgreSQL checks fail. Nothing else may fire, before or after.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from tradearena.contracts import keys
from tradearena.launcher import scrape_targets
from tradearena.testing.lobby import PASSWORD, make_admin
from tradearena.testing.platform import CLI, UpProcess, short_catalogue
from tradearena.testing.prometheus import PrometheusServer

FAULT_ALERTS = ("TradeArenaFeedStale", "TradeArenaResultsLagging", "TradeArenaPostgresErrors")
COMPONENTS = {
    scrape_targets.LOBBY,
    scrape_targets.FEED_RELAY,
    scrape_targets.RESULTS_WORKER,
    scrape_targets.MATCH_SERVER,
}


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _freeze(pid: int, frozen: list[int]) -> None:
    os.kill(pid, signal.SIGSTOP)
    frozen.append(pid)


def _post(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        reply: dict[str, Any] = json.loads(resp.read())
    return reply


def _admin_token(up: UpProcess) -> str:
    """An operator's account: registered, promoted in the database, logged in."""
    account = {"username": "oncall", "password": PASSWORD}
    user = _post(f"{up.url}/api/v1/auth/register", account)
    make_admin(up.dsn, user["user"]["id"])
    token: str = _post(f"{up.url}/api/v1/auth/login", account)["access_token"]
    return token


def test_prometheus_fires_feed_results_and_postgres_alerts_on_up(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEARENA_WATCH_INTERVAL_S", "1")
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    prometheus = PrometheusServer(
        tmp_path / "prometheus", sd_files=(data_dir / "var" / scrape_targets.FILE_NAME,)
    )
    bots: subprocess.Popen[bytes] | None = None
    frozen: list[int] = []  # continued in the end, whatever happens
    try:
        prometheus.start()
        # Every component of `up` is discovered and scraped.
        prometheus.wait_until(
            lambda: (
                {t["labels"]["component"] for t in prometheus.targets() if t["health"] == "up"}
                >= COMPONENTS
            ),
            30,
            "every component scraped",
        )
        bots = subprocess.Popen(
            [CLI, "bots", "--url", up.url, "--count", "2", "--mode", "duel", "--format", "blitz"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = up.wait_for_line(r"match \S+ started", timeout=60)
        match_id = started.split()[1]
        admin = _admin_token(up)
        # The rules see the platform healthy before the faults.
        prometheus.wait_until(
            lambda: (
                bool(prometheus.query("tradearena_dependency_up{dependency='postgres'} == 1"))
                and bool(prometheus.query("tradearena_feed_last_tick_timestamp_seconds"))
            ),
            20,
            "the lobby's watch scraped",
        )
        assert not prometheus.firing(), "the rules fire on a healthy platform"

        # The faults, together: the worker frozen while the duel ends (an operator cancels
        # it: its server settles and publishes the result at once), then the relay and
        # PostgreSQL (the cancel is audited in PostgreSQL first).
        status = json.loads((up.data_dir / "status.json").read_text())["children"]
        _freeze(status["results-worker"]["pid"], frozen)
        _post(
            f"{up.url}/api/v1/admin/matches/{match_id}/cancel",
            {"reason": "alerting test"},
            admin,
        )
        results = redis.Redis.from_url(up.redis_url)
        try:
            prometheus.wait_until(
                lambda: results.xlen(keys.RESULTS_STREAM) > 0, 30, "the result published"
            )
        finally:
            results.close()
        bots.kill()
        postmaster = status["postgres"]["pid"]
        for pid in (status["feed-relay"]["pid"], postmaster, *_children_of(postmaster)):
            _freeze(pid, frozen)

        fired = prometheus.wait_for_alerts(FAULT_ALERTS, timeout=180)
        print(f"alerts fired after the faults (s): {fired}")
        alerts = {a["labels"]["alertname"]: a for a in prometheus.alerts()}
        assert not prometheus.firing() - set(FAULT_ALERTS)  # nothing unrelated
        assert alerts["TradeArenaFeedStale"]["labels"]["symbol"] == "BTCUSDT"
        for name in FAULT_ALERTS:
            assert alerts[name]["annotations"]["runbook_url"].endswith(f"/{name}.md")
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        if bots is not None:
            bots.kill()
            bots.wait(10)
        prometheus.stop()
        up.stop()
