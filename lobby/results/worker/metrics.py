"""The results worker's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ResultsMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.processed = Counter(
            "tradearena_results_processed", "Results stored in PostgreSQL", registry=r
        )
        self.duplicates = Counter(
            "tradearena_results_duplicates", "Deliveries of a result already stored", registry=r
        )
        self.dead_lettered = Counter(
            "tradearena_results_dead_lettered",
            "Entries moved to the dead letter",
            ["reason"],
            registry=r,
        )
        self.retries = Counter(
            "tradearena_results_store_retries",
            "Failed store attempts retried",
            ["kind"],
            registry=r,
        )
        self.redis_retries = Counter(
            "tradearena_results_redis_retries",
            "Redis calls that failed (Redis away) and were retried after a backoff",
            registry=r,
        )
        self.store_seconds = Histogram(
            "tradearena_results_store_seconds", "Time to store one result", registry=r
        )
        self.lag = Gauge(
            "tradearena_results_lag", "Stream entries not yet delivered to the group", registry=r
        )
        self.pending = Gauge(
            "tradearena_results_pending", "Entries delivered but not acknowledged", registry=r
        )
        self.dead_letter_entries = Gauge(
            "tradearena_results_dead_letter_entries",
            "Entries in the dead letter (its stream length)",
            registry=r,
        )
        self.dead_letter_oldest_age = Gauge(
            "tradearena_results_dead_letter_oldest_age_seconds",
            "Time the oldest dead-letter entry has waited (0 when there is none)",
            registry=r,
        )
