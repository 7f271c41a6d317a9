"""Prometheus metrics every service exports on `/metrics`.

One registry per service object (no module-level globals), so tests can build
several services in one process.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.events_in = Counter(
            "deskstream_events_in", "Events consumed", ["service", "topic", "type"], registry=self.registry
        )
        self.events_out = Counter(
            "deskstream_events_out", "Events produced", ["service", "topic", "type"], registry=self.registry
        )
        self.errors = Counter(
            "deskstream_errors", "Records rejected or failed, by reason", ["service", "reason"], registry=self.registry
        )
        self.processing = Histogram(
            "deskstream_processing_seconds", "Time to handle one consumed event", ["service", "topic"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.service = service

    def consumed(self, topic: str, event_type: str) -> None:
        self.events_in.labels(self.service, topic, event_type).inc()

    def produced(self, topic: str, event_type: str) -> None:
        self.events_out.labels(self.service, topic, event_type).inc()

    def failed(self, reason: str) -> None:
        self.errors.labels(self.service, reason).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
