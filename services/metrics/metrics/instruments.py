"""The metrics service's own Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class PullMetrics:
    pulls: Counter
    pull_seconds: Histogram
    planned: Gauge
    publishing_backlog: Gauge
    waiting_for_publishing: Gauge
    account_snapshots: Counter


def build_pull_metrics(registry: CollectorRegistry | None = None) -> PullMetrics:
    registry = registry or CollectorRegistry()
    return PullMetrics(
        pulls=Counter(
            "socialpub_metrics_pulls",
            "Insight pulls by platform, why they ran (first, day, nightly, refresh, catch_up) and what they found",
            ["platform", "reason", "status"],
            registry=registry,
        ),
        pull_seconds=Histogram(
            "socialpub_metrics_pull_seconds",
            "Time to pull one post's insights from its platform",
            ["platform"],
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        ),
        planned=Gauge(
            "socialpub_metrics_planned_posts", "Posts with a planned pull on this replica", registry=registry
        ),
        publishing_backlog=Gauge(
            "socialpub_metrics_publishing_backlog",
            "Due posts the publishers had not finished, as last read (-1: unknown)",
            registry=registry,
        ),
        waiting_for_publishing=Gauge(
            "socialpub_metrics_waiting_for_publishing",
            "1 while planned pulls wait for the publishers' backlog to clear",
            registry=registry,
        ),
        account_snapshots=Counter(
            "socialpub_metrics_account_snapshots",
            "Daily account snapshots by platform, why they ran (first, daily, catch_up) and what they found",
            ["platform", "reason", "status"],
            registry=registry,
        ),
    )
