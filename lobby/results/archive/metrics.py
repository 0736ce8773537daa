"""The archive's Prometheus metrics, on the results worker's /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# 1 KiB .. 64 MiB, by powers of four.
_BYTES_BUCKETS = tuple(float(1024 * 4**i) for i in range(9))


class ArchiveMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.archived = Counter(
            "tradearena_results_archived", "Matches archived to PostgreSQL", registry=r
        )
        self.bytes = Histogram(
            "tradearena_results_archive_bytes",
            "Size of one match's archive: raw (the replay file) and compressed (stored)",
            ["kind"],
            buckets=_BYTES_BUCKETS,
            registry=r,
        )
        self.failures = Counter(
            "tradearena_results_archive_failures",
            "Archive attempts that failed (retried by the sweep; the keys do not expire)",
            ["reason"],
            registry=r,
        )
        self.expired = Counter(
            "tradearena_results_archive_expiries",
            "Archived matches whose Redis keys were given their expiry",
            registry=r,
        )
