"""Prometheus metrics, registered on a registry the caller owns (many apps per process)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector


class GatewayMetrics:
    """Every metric the gateway exports."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # What /metrics shows: this registry, or with several workers (prometheus_client's
        # multiprocess mode, set up by ``workers.serve_workers``) the sum over all of them.
        self.exposed = registry
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=directory)  # type: ignore[no-untyped-call]
        self.requests = Counter(
            "ezspark_gateway_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "ezspark_gateway_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.events = Counter(
            "ezspark_gateway_events_total",
            "Evolver events consumed, by kind and outcome",
            ["kind", "outcome"],
            registry=registry,
        )
        self.announcements = Counter(
            "ezspark_gateway_announcements_total",
            "Evaluator announcements received, by outcome (live, leaving, invalid)",
            ["outcome"],
            registry=registry,
        )
        self.commands = Counter(
            "ezspark_gateway_commands_published_total",
            "Commands sent to the evolvers",
            ["kind"],
            registry=registry,
        )
