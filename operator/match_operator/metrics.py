"""Operator metrics, in a registry of their own (no process-wide state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from match_operator.builders import COLD, WARM
from tradearena.contracts.phases import MatchPhase


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.matches = Gauge(
            "tradearena_operator_matches", "Matches by phase", ["phase"], registry=self.registry
        )
        self.time_to_ready = Histogram(
            "tradearena_operator_time_to_ready_seconds",
            "From Match creation to its match server accepting players",
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "tradearena_operator_reconcile_errors",
            "Failed reconcile passes",
            registry=self.registry,
        )
        self.reconciles = Counter(
            "tradearena_operator_reconciles", "Reconcile passes", registry=self.registry
        )
        self.pods_created = Counter(
            "tradearena_operator_pods_created", "Match-server pods created", registry=self.registry
        )
        self.allocations = Counter(
            "tradearena_operator_allocations",
            "New Matches by where they run: warm (a pool server) or cold (a pod of its own)",
            ["outcome"],
            registry=self.registry,
        )
        self.allocation_latency = Histogram(
            "tradearena_operator_allocation_latency_seconds",
            "From Match creation to Ready, by allocation outcome",
            ["outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
            registry=self.registry,
        )
        for outcome in (WARM, COLD):
            self.allocations.labels(outcome)
            self.allocation_latency.labels(outcome)
        for phase in MatchPhase:
            self.matches.labels(str(phase)).set(0)

    def set_phases(self, counts: dict[str, int]) -> None:
        for phase in MatchPhase:
            self.matches.labels(str(phase)).set(counts.get(str(phase), 0))
