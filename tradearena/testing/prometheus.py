"""Prometheus itself in tests: the shipped rules, `promtool`, and a real server.

Debian's `prometheus` package provides both binaries (scripts/bootstrap.sh installs it);
a missing binary fails the test, it never skips.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tradearena.launcher.localservices import free_port

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts" / "tradearena" / "files" / "prometheus-rules.yaml"
RUNBOOKS = REPO / "docs" / "runbooks"
PROMTOOL_TESTS = REPO / "tests" / "unit" / "observability" / "promtool"


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AssertionError(
            f"{name} not found: install Debian's prometheus (scripts/bootstrap.sh)"
        )
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=120, check=False
    )


def rule_groups(path: Path = RULES) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
    return groups


def alert_names(groups: Iterable[dict[str, Any]] | None = None) -> list[str]:
    return [
        rule["alert"]
        for group in (rule_groups() if groups is None else groups)
        for rule in group["rules"]
        if "alert" in rule
    ]


def promtool_cases(paths: Iterable[Path]) -> Iterator[tuple[str, bool]]:
    """(alert name, fires?) of every `alert_rule_test` entry in promtool test files."""
    for path in paths:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                yield case["alertname"], bool(case.get("exp_alerts"))


@dataclass
class PrometheusServer:
    """A Prometheus server scraping file_sd targets, evaluating `rule_files`, fast:
    scrape and evaluation intervals are its own settings, the rules are unchanged."""

    workdir: Path
    rule_files: tuple[Path, ...] = (RULES,)
    sd_files: tuple[Path, ...] = ()
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": "tradearena",
                    "file_sd_configs": [
                        {"files": [str(p) for p in self.sd_files], "refresh_interval": "1s"}
                    ],
                }
            ],
        }

    def start(self, timeout: float = 30) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()))
        checked = promtool("check", "config", str(config))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_until(lambda: self._get("/-/ready") is not None, timeout, "Prometheus ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                body = resp.read()
        except OSError:
            return None
        return json.loads(body) if path.startswith("/api/") else body

    def api(self, path: str) -> Any:
        reply = self._get(path)
        assert reply is not None and reply["status"] == "success", (path, reply)
        return reply["data"]

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("/api/v1/alerts")["alerts"]
        return alerts

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts() if a["state"] == "firing"}

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("/api/v1/targets")["activeTargets"]
        return active

    def query(self, expr: str) -> list[dict[str, Any]]:
        from urllib.parse import quote

        result: list[dict[str, Any]] = self.api(f"/api/v1/query?query={quote(expr)}")["result"]
        return result

    def wait_for_alerts(self, names: Iterable[str], timeout: float) -> dict[str, float]:
        """Wait until every named alert fires; return when each was first seen firing
        (seconds from the call). Fails with what fired and what was pending."""
        wanted = set(names)
        start = time.monotonic()
        seen: dict[str, float] = {}
        while True:
            for name in self.firing() & wanted:
                seen.setdefault(name, time.monotonic() - start)
            if set(seen) == wanted:
                return seen
            if time.monotonic() - start > timeout:
                states = {a["labels"]["alertname"]: a["state"] for a in self.alerts()}
                raise AssertionError(
                    f"alerts not firing within {timeout:.0f} s: {sorted(wanted - set(seen))}; "
                    f"fired {seen}; states {states}"
                )
            time.sleep(0.5)  # poll interval of the deadline loop

    @staticmethod
    def wait_until(check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.2)


def metric_names_in(expr: str) -> set[str]:
    """Metric names of the project (lobby_*, tradearena_*) an expression reads (not the
    recording rules' `level:metric:operations` names)."""
    return set(re.findall(r"(?<![:\w])((?:lobby|tradearena)_[a-z_]+)\b(?!:)", expr))
