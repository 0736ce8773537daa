"""The relay's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class RelayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.published = Counter(
            "tradearena_feed_ticks_published",
            "Ticks XADDed to the feed stream",
            ["symbol"],
            registry=r,
        )
        self.duplicates = Counter(
            "tradearena_feed_duplicates_refused",
            "Ticks refused because their stream ID was not greater than the last one",
            ["symbol"],
            registry=r,
        )
        self.fenced = Counter(
            "tradearena_feed_fenced_refused",
            "Publishes refused because this replica no longer held the lease",
            ["symbol"],
            registry=r,
        )
        self.publish_errors = Counter(
            "tradearena_feed_publish_errors",
            "Publishes that failed (Redis)",
            ["symbol"],
            registry=r,
        )
        self.leader = Gauge(
            "tradearena_feed_leader",
            "1 while this replica leads the symbol",
            ["symbol"],
            registry=r,
        )
        self.leader_changes = Counter(
            "tradearena_feed_leader_changes",
            "Times this replica was elected or deposed",
            ["symbol", "change"],
            registry=r,
        )
        self.handovers = Counter(
            "tradearena_feed_handovers",
            "Stops of this replica while leading, by outcome: taken (a standby took the"
            " offered lease while this one still published), timeout or no_standby (released)",
            ["symbol", "outcome"],
            registry=r,
        )
        self.reconnects = Counter(
            "tradearena_feed_upstream_reconnects",
            "Upstream reconnections",
            ["symbol"],
            registry=r,
        )
        self.malformed = Counter(
            "tradearena_feed_upstream_malformed",
            "Malformed upstream messages skipped",
            ["symbol"],
            registry=r,
        )
        self.publisher_restarts = Counter(
            "tradearena_feed_publisher_restarts",
            "Publisher failures, each followed by a restart after an exponential backoff",
            ["symbol"],
            registry=r,
        )
        self.staleness = Gauge(
            "tradearena_feed_staleness_seconds",
            "Seconds since the last tick: from upstream when leading, in the stream otherwise",
            ["symbol"],
            registry=r,
        )
        self.candles_written = Counter(
            "tradearena_feed_candles_written",
            "Closed candles written to the candle streams (backfill included)",
            ["symbol", "interval"],
            registry=r,
        )
        self.candle_age = Gauge(
            "tradearena_feed_last_candle_age_seconds",
            "Seconds since the close time of the last candle this leader wrote",
            ["symbol", "interval"],
            registry=r,
        )
