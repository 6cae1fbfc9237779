"""The publisher's own Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class PublisherMetrics:
    attempts: Counter
    replayed: Counter
    reconciled: Counter
    due_to_published: Histogram
    call_seconds: Histogram
    in_flight: Gauge
    pending: Gauge


def build_publisher_metrics(registry: CollectorRegistry | None = None) -> PublisherMetrics:
    registry = registry or CollectorRegistry()
    return PublisherMetrics(
        attempts=Counter(
            "socialpub_publisher_attempts",
            "Attempt outcomes (published, failed, retry_scheduled, held), by error code ('' when published)",
            ["platform", "outcome", "error_code"],
            registry=registry,
        ),
        replayed=Counter(
            "socialpub_publisher_replayed",
            "Redelivered attempts whose recorded outcome was emitted again (no platform call)",
            ["platform"],
            registry=registry,
        ),
        reconciled=Counter(
            "socialpub_publisher_reconciled",
            "Ambiguous attempts checked against the platform, by result",
            ["platform", "result"],
            registry=registry,
        ),
        due_to_published=Histogram(
            "socialpub_publisher_due_to_published_seconds",
            "From the post's due time to its outcome being recorded as published",
            ["platform"],
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
        ),
        call_seconds=Histogram(
            "socialpub_publisher_publish_seconds",
            "Time the platform flow of one publish took (all its calls)",
            ["platform"],
            registry=registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        ),
        in_flight=Gauge(
            "socialpub_publisher_in_flight", "Accounts being published for right now", ["platform"], registry=registry
        ),
        pending=Gauge(
            "socialpub_publisher_pending", "Fetched due posts not finished yet", ["platform"], registry=registry
        ),
    )
