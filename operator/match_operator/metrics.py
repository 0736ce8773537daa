"""Operator metrics, in a registry of their own (no process-wide state)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

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
        pool = ["namespace", "pool"]
        self.pool_desired = Gauge(
            "tradearena_operator_pool_desired_servers",
            "Servers a MatchServerPool wants (allocated + buffer, within min/max)",
            pool,
            registry=self.registry,
        )
        self.pool_ready = Gauge(
            "tradearena_operator_pool_ready_servers",
            "Pool servers whose pod is Ready",
            pool,
            registry=self.registry,
        )
        self.pool_allocated = Gauge(
            "tradearena_operator_pool_allocated_servers",
            "Pool servers hosting at least one match",
            pool,
            registry=self.registry,
        )
        self.pool_servers_created = Counter(
            "tradearena_operator_pool_servers_created",
            "Pool server pods created",
            pool,
            registry=self.registry,
        )
        self.pool_servers_deleted = Counter(
            "tradearena_operator_pool_servers_deleted",
            "Pool server pods deleted, by reason (scale-down, outdated, failed, drained)",
            [*pool, "reason"],
            registry=self.registry,
        )
        self.pool_state_read = Histogram(
            "tradearena_operator_pool_state_read_seconds",
            "One round of reading every pool server's state from Redis (a pipeline)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=self.registry,
        )
        self.pool_pod_patches = Counter(
            "tradearena_operator_pool_pod_patches",
            "Label/annotation patches of pool server pods (only on change)",
            registry=self.registry,
        )

    def watch(
        self,
        ports_allocated: Callable[[], float],
        ports_capacity: Callable[[], float],
        backlog: Callable[[], float],
        oldest_unstarted: Callable[[], float],
    ) -> None:
        """Figures computed when scraped, from the runtime's own bookkeeping."""
        r = self.registry
        Gauge(
            "tradearena_operator_host_ports_allocated",
            "Host ports handed out to match-server pods",
            registry=r,
        ).set_function(ports_allocated)
        Gauge(
            "tradearena_operator_host_ports_capacity",
            "Host ports the operator may hand out: the port range times the game nodes",
            registry=r,
        ).set_function(ports_capacity)
        Gauge(
            "tradearena_operator_reconcile_backlog",
            "Matches whose reconcile is due and not yet done",
            registry=r,
        ).set_function(backlog)
        Gauge(
            "tradearena_operator_oldest_unstarted_match_seconds",
            "Age of the oldest Match not yet Live (Pending, Creating or Ready); 0 if none",
            registry=r,
        ).set_function(oldest_unstarted)

    def set_pool(self, namespace: str, pool: str, desired: int, ready: int, allocated: int) -> None:
        self.pool_desired.labels(namespace, pool).set(desired)
        self.pool_ready.labels(namespace, pool).set(ready)
        self.pool_allocated.labels(namespace, pool).set(allocated)

    def forget_pool(self, namespace: str, pool: str) -> None:
        for gauge in (self.pool_desired, self.pool_ready, self.pool_allocated):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, pool)

    def set_phases(self, counts: dict[str, int]) -> None:
        for phase in MatchPhase:
            self.matches.labels(str(phase)).set(counts.get(str(phase), 0))
