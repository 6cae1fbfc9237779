"""Scheduler benchmark on the real local stack (`make bench-scheduler`). Prints figures; asserts nothing.

(a) steady: 200 posts/s falling due for 2 minutes, one replica;
(b) burst: 50,000 posts due in the same second, 5,000 accounts, every platform, two replicas;
(c) memory: resident memory of one replica holding 100,000 future posts.

Lateness is PostDue's emit time (its occurred_at) minus its due time; arrival lateness is when an
independent consumer received it. Missing and duplicate PostDue events are counted by that consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psutil
from aiokafka import AIOKafkaConsumer

from shared import topics
from shared.events import AssetApproved, Platform, PostFormat, Schedule, Target, utc_now
from shared.ids import post_id_for
from shared.kafka import EventBus, build_broker, ensure_topics
from shared.metrics import build_metrics
from shared.settings import KafkaSettings
from tests.support import ServiceProcess, metric_value

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"
PLATFORMS = list(Platform)
PARTITIONS = 12


@dataclass
class DueLog:
    """Every PostDue seen by an independent consumer."""

    arrivals: list[tuple[str, float, float, float]] = field(default_factory=list)  # post, due, emitted, received

    def counts(self) -> Counter[str]:
        return Counter(post for post, *_ in self.arrivals)


async def watch_due(settings: KafkaSettings, log: DueLog, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        *(settings.topic_prefix + topics.posts_due(p) for p in Platform),
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            received = time.time()
            for records in batch.values():
                for r in records:
                    data = json.loads(r.value)
                    log.arrivals.append(
                        (
                            data["post_id"],
                            datetime.fromisoformat(data["due_at"]).timestamp(),
                            datetime.fromisoformat(data["occurred_at"]).timestamp(),
                            received,
                        )
                    )
    finally:
        await consumer.stop()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Run:
    def __init__(self, name: str, kafka: str, mongo: str, replicas: int, logs: Path) -> None:
        run = uuid4().hex[:8]
        self.name = name
        self.settings = KafkaSettings(bootstrap_servers=kafka, partitions=PARTITIONS, topic_prefix=f"bench{run}.")
        self.env = {
            "SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS": kafka,
            "SOCIALPUB_KAFKA__TOPIC_PREFIX": self.settings.topic_prefix,
            "SOCIALPUB_KAFKA__PARTITIONS": str(PARTITIONS),
            "SOCIALPUB_MONGO__URL": mongo,
            "SCHEDULER_MONGO__DATABASE": f"bench_scheduler_{run}",
            "SOCIALPUB_LOG__LEVEL": "WARNING",
        }
        self.replica_count = replicas
        self.logs = logs
        self.replicas: list[ServiceProcess] = []
        self.metrics = build_metrics()
        self.broker = build_broker(self.settings, service="bench", metrics=self.metrics)
        self.bus = EventBus(self.broker, self.settings, self.metrics, client_id="bench")
        self.due = DueLog()
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Run:
        await ensure_topics(self.settings, topics.all_topics())
        self.replicas = [
            ServiceProcess("scheduler", self.env, self.logs / f"{self.name}-replica{i}.log")
            for i in range(self.replica_count)
        ]
        for replica in self.replicas:
            await replica.wait_ready()
        await self.bus.start()
        await self.broker.start()
        self._watcher = asyncio.create_task(watch_due(self.settings, self.due, self._stop))
        await self.until(lambda: self.gauge("socialpub_scheduler_owned_partitions"), PARTITIONS, within=60)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        if self._watcher:
            await self._watcher
        await self.broker.stop()
        await self.bus.stop()
        for replica in self.replicas:
            replica.terminate()

    async def gauge(self, name: str) -> float:
        return sum([await metric_value(r.url, name) for r in self.replicas])

    async def until(self, read: Any, target: float, *, within: float) -> None:
        deadline = time.monotonic() + within
        while (value := await read()) < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: only {value} of {target} after {within}s")
            await asyncio.sleep(0.5)

    async def approve(self, dues: list[datetime], accounts: int) -> set[str]:
        """One AssetApproved with one target per due time; returns the post ids."""
        expected: set[str] = set()
        items: list[tuple[str, Any, str]] = []
        for i, due in enumerate(dues):
            asset_id = f"{self.name}-{i}"
            target = Target(
                target_id="t",
                platform=PLATFORMS[i % len(PLATFORMS)],
                account_id=f"acct-{i % accounts}",
                format=PostFormat.POST,
            )
            items.append(
                (
                    topics.ASSETS_APPROVED,
                    AssetApproved(
                        producer="bench",
                        workspace_id="bench",
                        correlation_id=asset_id,
                        asset_id=asset_id,
                        caption=f"post {i}",
                        targets=[target],
                        schedule=Schedule(at_utc=due),
                    ),
                    asset_id,
                )
            )
            expected.add(post_id_for(asset_id, "t"))
        for start in range(0, len(items), 2000):
            await self.bus.publish_many(items[start : start + 2000])
        return expected

    async def scheduled(self) -> float:
        return await self.gauge('socialpub_scheduler_posts{state="scheduled"}')

    def report(self, expected: set[str], due_second: float | None = None) -> dict[str, Any]:
        counts = self.due.counts()
        ours = [a for a in self.due.arrivals if a[0] in expected]
        emit = [max(0.0, emitted - due) for _, due, emitted, _ in ours]
        arrive = [max(0.0, received - due) for _, due, _, received in ours]
        result: dict[str, Any] = {
            "posts": len(expected),
            "emitted": len(ours),
            "missing": len(expected - set(counts)),
            "duplicates": sum(c - 1 for p, c in counts.items() if p in expected and c > 1),
            "emit_lateness_ms": {
                q: round(percentile(emit, v) * 1000, 1) for q, v in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
            },
            "arrival_lateness_ms": {
                q: round(percentile(arrive, v) * 1000, 1) for q, v in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
            },
        }
        if due_second is not None and ours:
            result["drain_seconds"] = round(max(received for *_, received in ours) - due_second, 2)
            result["last_emit_seconds"] = round(max(emitted for _, _, emitted, _ in ours) - due_second, 2)
        return result


async def steady(kafka: str, mongo: str, logs: Path, rate: int, seconds: int) -> dict[str, Any]:
    async with Run("steady", kafka, mongo, 1, logs) as run:
        start = utc_now() + timedelta(seconds=20 + rate * seconds / 4000)
        dues = [start + timedelta(seconds=i / rate) for i in range(rate * seconds)]
        print(f"steady: scheduling {len(dues)} posts at {rate}/s from {start:%H:%M:%S}", flush=True)
        expected = await run.approve(dues, accounts=5000)
        await run.until(run.scheduled, len(dues), within=(start - utc_now()).total_seconds())
        await asyncio.sleep((dues[-1] - utc_now()).total_seconds() + 5)
        return {"rate_per_s": rate, "seconds": seconds, **run.report(expected)}


async def burst(kafka: str, mongo: str, logs: Path, posts: int, replicas: int) -> dict[str, Any]:
    async with Run("burst", kafka, mongo, replicas, logs) as run:
        due = utc_now() + timedelta(seconds=30 + posts / 1000)
        due = due.replace(microsecond=0)
        print(f"burst: scheduling {posts} posts all due at {due:%H:%M:%S} on {replicas} replicas", flush=True)
        expected = await run.approve([due] * posts, accounts=5000)
        await run.until(run.scheduled, posts, within=(due - utc_now()).total_seconds())
        print(f"burst: all {posts} scheduled, {(due - utc_now()).total_seconds():.0f}s before due", flush=True)

        async def handed_over() -> float:
            return len({a[0] for a in run.due.arrivals} & expected)

        with contextlib.suppress(RuntimeError):  # what did not arrive within 120 s is reported as missing
            await run.until(handed_over, posts, within=due.timestamp() + 120 - time.time())
        await asyncio.sleep(3)
        rss = {
            f"replica{i}": round(psutil.Process(r.process.pid).memory_info().rss / 2**20)
            for i, r in enumerate(run.replicas)
        }
        return {"replicas": replicas, "accounts": 5000, **run.report(expected, due.timestamp()), "rss_mib": rss}


async def memory(kafka: str, mongo: str, logs: Path, posts: int) -> dict[str, Any]:
    async with Run("memory", kafka, mongo, 1, logs) as run:
        replica = psutil.Process(run.replicas[0].process.pid)
        idle = replica.memory_info().rss
        due = utc_now() + timedelta(hours=6)
        print(f"memory: scheduling {posts} future posts on one replica", flush=True)
        await run.approve([due + timedelta(seconds=i % 3600) for i in range(posts)], accounts=5000)
        await run.until(run.scheduled, posts, within=600)
        await asyncio.sleep(2)
        return {
            "posts": posts,
            "rss_idle_mib": round(idle / 2**20),
            "rss_mib": round(replica.memory_info().rss / 2**20),
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["steady", "burst", "memory"], action="append")
    parser.add_argument("--steady-rate", type=int, default=200)
    parser.add_argument("--steady-seconds", type=int, default=120)
    parser.add_argument("--burst-posts", type=int, default=50_000)
    parser.add_argument("--memory-posts", type=int, default=100_000)
    args = parser.parse_args()
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    mongo = os.environ.get("MONGO_URL", "mongodb://localhost:27017/")
    RESULTS.mkdir(exist_ok=True)
    logs = RESULTS / "logs"
    logs.mkdir(exist_ok=True)
    only = set(args.only or ["steady", "burst", "memory"])
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{round(psutil.virtual_memory().total / 2**30)} GiB, Python {platform.python_version()}",
        "when": utc_now().isoformat(timespec="seconds"),
    }
    if "steady" in only:
        results["steady"] = await steady(kafka, mongo, logs, args.steady_rate, args.steady_seconds)
        print(json.dumps(results["steady"], indent=2), flush=True)
    if "burst" in only:
        results["burst"] = await burst(kafka, mongo, logs, args.burst_posts, replicas=2)
        print(json.dumps(results["burst"], indent=2), flush=True)
    if "memory" in only:
        results["memory"] = await memory(kafka, mongo, logs, args.memory_posts)
        print(json.dumps(results["memory"], indent=2), flush=True)
    (RESULTS / "scheduler.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {RESULTS / 'scheduler.json'}; logs in {logs}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
