"""Prometheus metrics of one match-server process (own registry: no global state).

A pool server hosts many matches: every counter and histogram adds over them, the
gauges `players_connected` and `phase` count over them (a dedicated server: its one
match), and no metric has a per-match label."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class MatchMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.players_connected = Gauge(
            "tradearena_match_players_connected",
            "Players with a live socket (over every hosted match)",
            registry=r,
        )
        self.tick_to_emit = Histogram(
            "tradearena_match_tick_to_emit_seconds",
            "From an official price being due to its tick event handed to the sockets",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.actions = Counter(
            "tradearena_match_actions_total", "Player actions by outcome code", ["code"], registry=r
        )
        self.feed_staleness = Gauge(
            "tradearena_match_feed_staleness_seconds",
            "Seconds since the last live feed price arrived",
            registry=r,
        )
        self.reconnects = Counter(
            "tradearena_match_reconnects_total", "Players connecting again", registry=r
        )
        self.log_append = Histogram(
            "tradearena_match_log_append_seconds",
            "Durable append of log entries to Redis before answering",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=r,
        )
        self.replica_wait = Histogram(
            "tradearena_match_replica_wait_seconds",
            "Writes (log appends, results) until enough replicas acknowledged them"
            " (Redis WAIT; only when the server waits for replicas)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.replica_wait_timeouts = Counter(
            "tradearena_match_replica_wait_timeouts_total",
            "Writes not acknowledged by enough replicas in time (each faults its match:"
            " redis_not_durable)",
            registry=r,
        )
        self.phase = Gauge(
            "tradearena_match_phase",
            "Hosted matches in each phase (a dedicated server: 1 for its match's phase)",
            ["phase"],
            registry=r,
        )
        self.hosted = Gauge("tradearena_match_hosted", "Matches this process hosts now", registry=r)
        self.capacity = Gauge(
            "tradearena_match_capacity", "Matches this process may host at once", registry=r
        )
        self.matches_started = Counter(
            "tradearena_match_matches_started_total",
            "Matches taken on, by how: new (assigned or configured) or restored (after a restart)",
            ["how"],
            registry=r,
        )
        self.matches_ended = Counter(
            "tradearena_match_matches_ended_total",
            "Matches over and published, by outcome: finished, cancelled, or failed (settled"
            " alone after an error or an engine overrun)",
            ["outcome"],
            registry=r,
        )
        self.match_faults = Counter(
            "tradearena_match_faults_total",
            "Matches settled alone, by fault: server_error, engine_overrun, redis_not_durable"
            " or redis_log_diverged",
            ["fault"],
            registry=r,
        )
        self.allocation_ack = Histogram(
            "tradearena_match_allocation_ack_seconds",
            "From a match's assignment (assigned_at_ms) to its Ready written by this server",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.gc_pause = Histogram(
            "tradearena_match_gc_pause_seconds",
            "Pauses of the cycle collector, by generation",
            ["generation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.gc_frozen = Gauge(
            "tradearena_match_gc_frozen_objects",
            "Objects moved out of the collector's sight (the match's records so far)",
            registry=r,
        )
        self.event_refusals = Counter(
            "tradearena_match_event_refusals_total",
            "Client events refused before any handler (reserved or missing names), by code",
            ["code"],
            registry=r,
        )
        self.connection_refusals = Counter(
            "tradearena_match_connection_refusals_total",
            "Socket connections refused, by reason code",
            ["code"],
            registry=r,
        )
        self.conflated = Counter(
            "tradearena_match_conflated_total",
            "Events a client that was behind never got (a newer one of the kind replaced"
            " it), by event",
            ["event"],
            registry=r,
        )
        self.stuck_disconnects = Counter(
            "tradearena_match_stuck_disconnects_total",
            "Clients disconnected for staying behind longer than the limit",
            registry=r,
        )
        self.clients_behind = Gauge(
            "tradearena_match_clients_behind",
            "Clients now behind (getting only the newest tick and leaderboard)",
            registry=r,
        )
        self.tick_acks = Counter(
            "tradearena_match_tick_acks_total",
            "Well-formed tick_ack events handled, by path: fast (before Socket.IO's"
            " dispatch) or dispatch (sent with a callback)",
            ["path"],
            registry=r,
        )
        self.tick_ack_lag = Histogram(
            "tradearena_match_tick_ack_lag_ticks",
            "Ticks written to a client but not yet acknowledged, when it acknowledges",
            buckets=(0, 1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.tls_reloads = Counter(
            "tradearena_match_tls_reloads_total",
            "Certificate reloads of the players' port after its files changed, by outcome"
            " (loaded, or failed: the previous certificate kept)",
            ["outcome"],
            registry=r,
        )
        self.tls_not_after = Gauge(
            "tradearena_match_tls_certificate_expiry_timestamp_seconds",
            "notAfter of the certificate the players' port serves (Unix time)",
            registry=r,
        )
        self.bad_input = Counter(
            "tradearena_match_bad_input_total",
            "Undecodable packets and unparseable HTTP requests, by source and error type",
            ["source", "error"],
            registry=r,
        )
        self.spectators_connected = Gauge(
            "tradearena_match_spectators_connected",
            "Spectators with a live socket (over every hosted match)",
            registry=r,
        )
        self.spectator_frames = Counter(
            "tradearena_match_spectator_frames_total",
            "Spectator frames (`spectate` events) handed to spectators' sockets",
            registry=r,
        )
        self.spectator_frames_skipped = Counter(
            "tradearena_match_spectator_frames_skipped_total",
            "Spectator frames of a match not made because the server was loaded (its"
            " players keep priority)",
            registry=r,
        )
        self.spectator_refusals = Counter(
            "tradearena_match_spectator_refusals_total",
            "Spectator connections refused, by code (spectators_full, server_busy, token_*,"
            " unknown_match)",
            ["code"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "tradearena_match_event_loop_lag_seconds",
            "How late the event loop ran a timer, recently (decaying maximum): the load"
            " measure spectators give way to",
            registry=r,
        )
