"""Prometheus metrics: one registry per service, FastStream's Kafka middleware, our own counters."""

from __future__ import annotations

from dataclasses import dataclass

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector


@dataclass(frozen=True)
class ServiceMetrics:
    """The metrics every service has. Services add their own on the same registry."""

    registry: CollectorRegistry
    events_consumed: Counter
    events_published: Counter
    dead_letters: Counter
    handler_errors: Counter
    handler_seconds: Histogram

    def kafka_middleware(self, service: str) -> KafkaPrometheusMiddleware:
        return KafkaPrometheusMiddleware(registry=self.registry, app_name=service)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def build_metrics() -> ServiceMetrics:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return ServiceMetrics(
        registry=registry,
        events_consumed=Counter(
            "socialpub_events_consumed",
            "Events taken from Kafka, by outcome (received, ignored, dead_lettered)",
            ["topic", "event_type", "outcome"],
            registry=registry,
        ),
        events_published=Counter(
            "socialpub_events_published",
            "Events written to Kafka",
            ["topic", "event_type"],
            registry=registry,
        ),
        dead_letters=Counter(
            "socialpub_dead_letters",
            "Messages sent to a dead-letter topic because they could not be decoded or validated",
            ["topic"],
            registry=registry,
        ),
        handler_errors=Counter(
            "socialpub_handler_errors",
            "Handler failures; the message is delivered again",
            ["topic", "event_type"],
            registry=registry,
        ),
        handler_seconds=Histogram(
            "socialpub_handler_seconds",
            "Time spent handling one event",
            ["topic", "event_type"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        ),
    )
