"""Prometheus metrics of one lobby app, on the app's own registry (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class LobbyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lobby_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lobby_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.logins = Counter(
            "lobby_logins_total",
            "Login attempts by outcome (ok, failed, throttled, banned)",
            ["outcome"],
            registry=self.registry,
        )
        self.registrations = Counter(
            "lobby_registrations_total", "Accounts created", registry=self.registry
        )
        self.refreshes = Counter(
            "lobby_token_refreshes_total",
            "Refresh-token presentations by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "lobby_rate_limited_total",
            "Requests refused by a rate limit, by bucket",
            ["bucket"],
            registry=self.registry,
        )
        self.active_sockets = Gauge(
            "lobby_socketio_connections",
            "Connected Socket.IO clients on the /lobby namespace",
            registry=self.registry,
        )
        self.socket_event_refusals = Counter(
            "lobby_socketio_event_refusals_total",
            "Client events on /lobby refused before any handler (reserved names), by code",
            ["code"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "lobby_notifications_total",
            "Notifications stored, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.bad_input = Counter(
            "lobby_bad_input_total",
            "Undecodable Socket.IO packets and unparseable HTTP requests, by source and error",
            ["source", "error"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
