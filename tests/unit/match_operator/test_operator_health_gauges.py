"""The operator's health gauges for the alerts, read from its own bookkeeping at scrape
time: host ports allocated and capacity, reconcile backlog, oldest Match not yet Live."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prometheus_client import CollectorRegistry

from match_operator.builders import iso
from match_operator.kube import KubeApi
from match_operator.runtime import Runtime
from match_operator.settings import OperatorSettings
from tradearena.contracts import resource

SETTINGS = OperatorSettings(port_min=7000, port_max=7009)


def _match(name: str, phase: str, age_s: float) -> dict[str, Any]:
    created = datetime.now(UTC) - timedelta(seconds=age_s)
    return {
        "metadata": {
            "name": name,
            "namespace": "games",
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "10",
            "finalizers": [resource.FINALIZER],
            "creationTimestamp": iso(created),
        },
        "spec": {"mode": "duel", "format": "blitz", "players": ["alice", "bob"]},
        "status": {"phase": phase},
    }


def _value(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_health_gauges_follow_the_runtime() -> None:
    runtime = Runtime(SETTINGS, cast(KubeApi, None))  # no I/O in this path
    registry = runtime.metrics.registry
    assert _value(registry, "tradearena_operator_oldest_unstarted_match_seconds") == 0
    assert _value(registry, "tradearena_operator_host_ports_capacity") == 10
    assert _value(registry, "tradearena_operator_host_ports_allocated") == 0

    runtime.on_match(_match("live", "Live", 900))
    runtime.on_match(_match("creating", "Creating", 400))
    runtime.on_match(_match("ready", "Ready", 30))
    oldest = _value(registry, "tradearena_operator_oldest_unstarted_match_seconds")
    assert 399 <= oldest <= 402  # the Live one, older, does not count

    runtime.ports.allocate("games/creating", nodes=1)
    assert _value(registry, "tradearena_operator_host_ports_allocated") == 1

    now = time.monotonic()
    runtime._due.update({("games", "a"): now - 1, ("games", "b"): now + 60})
    assert _value(registry, "tradearena_operator_reconcile_backlog") == 1
