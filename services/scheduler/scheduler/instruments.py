"""The scheduler's own Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scheduler.domain import State
from scheduler.timetable import Timetable


@dataclass(frozen=True)
class SchedulerMetrics:
    posts: Gauge
    emitted: Counter
    missed: Counter
    lateness: Histogram
    partitions: Gauge

    def observe(self, timetable: Timetable) -> None:
        counts = timetable.counts()
        for state in (State.SCHEDULED, State.DISPATCHED, State.HELD):
            self.posts.labels(state.value).set(counts.get(state, 0))
        self.partitions.set(len(timetable.partitions))


def build_scheduler_metrics(registry: CollectorRegistry) -> SchedulerMetrics:
    return SchedulerMetrics(
        posts=Gauge("socialpub_scheduler_posts", "Posts held by this replica, by state", ["state"], registry=registry),
        emitted=Counter("socialpub_scheduler_post_due_emitted", "PostDue events emitted", registry=registry),
        missed=Counter(
            "socialpub_scheduler_posts_missed", "Posts failed as missed (overdue beyond the window)", registry=registry
        ),
        lateness=Histogram(
            "socialpub_scheduler_lateness_seconds",
            "PostDue emit time minus due time",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        ),
        partitions=Gauge("socialpub_scheduler_owned_partitions", "Partitions this replica owns", registry=registry),
    )
