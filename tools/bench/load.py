"""Whole-system load benchmark (`make bench`). Prints figures and writes them; asserts nothing.

Every service runs as a real process against the local Kafka and FerretDB, the emulator answers
every platform call after 50 ms, and 5,000 accounts spread over all nine platforms publish:

- steady: 200 posts/s falling due for 5 minutes;
- burst: 50,000 posts due in the same second (the top of the hour).

Each scenario ends once its posts' first insights are in (at most 240 s after its last outcome),
so the next one starts on a quiet system rather than behind the last one's insight pulls.

Content enters through `assets.approved.v1`, the scheduler's real entry point for volume. Figures:
lateness of PostDue (its emit time minus due time) and of publication (the platform's published
time minus due time) as p50/p95/p99/max, posts/s published, CPU and resident memory per process,
duplicates on the emulator, posts that did not reach a terminal state, and when each post's first
insights arrived (the approval board and the metrics service run at a lower CPU priority, so
under load they lag: this shows by how much). Results go to
bench-results/load-<run>.json and a plot to bench-results/load-<run>.png.

    uv run python -m tools.bench.load [--accounts 5000] [--steady-rate 200] [--steady-seconds 300]
                                      [--burst-posts 50000] [--publishers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from tools.bench.system import RESULTS, Sampler, System, progress
from tools.emulator.endpoints import INSIGHT_PLATFORMS

GOALS = "burst fully published within 120 s; steady p99 publish lateness < 1 s; 0 duplicates; 0 unfinished"


async def wait_finished(system: System, ids: set[str], *, until: float, label: str) -> None:
    started = time.time()
    while (done := system.tracker.finished(ids)) < len(ids) and time.time() < until:
        progress(done, len(ids), started, f"{label}: {system.tracker.published(ids)} published")
        await asyncio.sleep(1)
    progress(system.tracker.finished(ids), len(ids), started, label)
    print(flush=True)


def lead_seconds(posts: int) -> float:
    """How far ahead of the first due time the posts are approved. All of a run's content is
    approved at once; expanding it into posts (about 500/s here, with everything else sharing the
    cores) must be over before the first is due, or the run measures that expansion as well."""
    return 30 + posts / 400


async def wait_scheduled(system: System, ids: set[str], *, until: float) -> dict[str, Any]:
    """Until every post is scheduled (or `until`); how long that took and what was left."""
    started = time.time()
    while (done := sum(1 for i in ids if system.tracker.posts[i].scheduled_at)) < len(ids) and time.time() < until:
        progress(done, len(ids), started, "scheduled")
        await asyncio.sleep(1)
    print(flush=True)
    times = [t for i in ids if (t := system.tracker.posts[i].scheduled_at) is not None]
    return {
        "scheduled_in_s": round(max(times) - started, 1) if times else None,
        "unscheduled_at_first_due": len(ids) - len(times),
    }


async def wait_metrics(system: System, ids: set[str], *, until: float) -> None:
    """Until every published post has its first insights (or `until`): they come after the posts."""
    started = time.time()
    published = {
        i for i in ids if (p := system.tracker.posts[i]).published_at is not None and p.platform in INSIGHT_PLATFORMS
    }
    while (got := sum(1 for i in published if system.tracker.posts[i].first_metrics_at)) < len(published):
        if time.time() >= until:
            break
        progress(got, len(published), started, "first metrics")
        await asyncio.sleep(1)
    print(flush=True)


def published_rate(system: System, ids: set[str]) -> float:
    times = sorted(t for i in ids if (t := system.tracker.posts[i].published_at) is not None)
    if len(times) < 2:
        return 0.0
    return round(len(times) / max(1e-9, times[-1] - min(system.tracker.posts[i].due for i in ids)), 1)


async def steady(system: System, rate: int, seconds: int) -> tuple[dict[str, Any], set[str]]:
    count = rate * seconds
    start = datetime.now(UTC) + timedelta(seconds=lead_seconds(count))
    dues = [start + timedelta(seconds=i / rate) for i in range(count)]
    print(f"steady: {count} posts due at {rate}/s from {start:%H:%M:%S}", flush=True)
    ids = await system.approve(dues, tag="steady")
    ingest = await wait_scheduled(system, ids, until=start.timestamp())
    await wait_finished(system, ids, until=dues[-1].timestamp() + 180, label="steady")
    return {"rate_per_s": rate, "seconds": seconds, **ingest, **system.tracker.summary(ids)}, ids


async def burst(system: System, posts: int) -> tuple[dict[str, Any], set[str]]:
    due = (datetime.now(UTC) + timedelta(seconds=lead_seconds(posts))).replace(microsecond=0)
    print(f"burst: {posts} posts all due at {due:%H:%M:%S}", flush=True)
    ids = await system.approve([due] * posts, tag="burst")
    ingest = await wait_scheduled(system, ids, until=due.timestamp())
    await wait_finished(system, ids, until=due.timestamp() + 600, label="burst")
    summary = {**ingest, **system.tracker.summary(ids)}
    published = [p for i in ids if (p := system.tracker.posts[i].published_at) is not None]
    summary["all_published_after_s"] = round(max(published) - due.timestamp(), 1) if published else None
    return {**summary}, ids


def plot(system: System, sampler: Sampler, scenarios: dict[str, set[str]], path: Path) -> None:
    figure, axes = plt.subplots(3, len(scenarios), figsize=(7 * len(scenarios), 10), squeeze=False)
    for column, (name, ids) in enumerate(scenarios.items()):
        posts = [system.tracker.posts[i] for i in ids]
        origin = min(p.due for p in posts)
        done = [(p.published_at - origin, p.published_at - p.due) for p in posts if p.published_at]
        top, bottom, cpu = axes[0][column], axes[1][column], axes[2][column]
        # By publication time, not due time: in a burst every post has the same due time.
        top.scatter([t for t, _ in done], [lag for _, lag in done], s=1, alpha=0.3)
        top.set_title(f"{name}: publish lateness over time")
        top.set_xlabel("published (s from first due)")
        top.set_ylabel("published - due (s)")
        seconds = [int(t) for t, _ in done]
        if seconds:
            bottom.hist(seconds, bins=max(1, max(seconds) - min(seconds) + 1))
        bottom.set_title(f"{name}: posts published per second")
        bottom.set_xlabel("s from first due")
        bottom.set_ylabel("posts/s")
        # Which process had the CPU while posts were late: the cores are shared by all of them.
        end = max((t for t, _ in done), default=0.0) + origin
        for process, samples in sampler.samples.items():
            window = [(t - origin, c) for t, c, _ in samples if origin - 10 <= t <= end]
            cpu.plot([t for t, _ in window], [c for _, c in window], label=process, linewidth=0.8)
        cpu.set_title(f"{name}: CPU per process (100 = one core)")
        cpu.set_xlabel("s from first due")
        cpu.set_ylabel("CPU %")
        cpu.legend(fontsize="x-small", ncol=4)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--steady-rate", type=int, default=200)
    parser.add_argument("--steady-seconds", type=int, default=300)
    parser.add_argument("--burst-posts", type=int, default=50_000)
    parser.add_argument("--publishers", type=int, default=1, help="publisher processes, each hosting all platforms")
    parser.add_argument(
        "--only", action="append", choices=["steady", "burst"], help="run only this scenario (repeatable)"
    )
    args = parser.parse_args()
    system = System("load", publishers=args.publishers)
    print(f"starting the system ({args.accounts} accounts on every platform); logs in {system.logs}", flush=True)
    await system.start(args.accounts)
    sampler = Sampler(system.processes())
    sampler.start()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "accounts": args.accounts,
        "publishers": args.publishers,
        "emulator_latency_ms": 50,
        "goals": GOALS,
    }
    scenarios: dict[str, set[str]] = {}
    first_metrics: dict[str, Any] = {}
    results["first_metrics"] = first_metrics
    try:
        for name in args.only or ("steady", "burst"):
            if name == "steady":
                summary, ids = await steady(system, args.steady_rate, args.steady_seconds)
            else:
                summary, ids = await burst(system, args.burst_posts)
            summary["published_per_s"] = published_rate(system, ids)
            # From the first due time: the lead before it is mostly idle and would dilute the means.
            summary["processes"] = sampler.summary(min(system.tracker.posts[i].due for i in ids), time.time())
            results[name] = summary
            scenarios[name] = ids
            print(json.dumps({name: summary}, indent=1), flush=True)
            # The next scenario starts on a quiet system: without this wait the burst shared the
            # cores with the insight pulls the steady run left behind (a few minutes of them).
            await wait_metrics(system, ids, until=time.time() + 240)
            first_metrics[name] = system.tracker.metrics_summary(ids)
            print(json.dumps({"first_metrics": {name: first_metrics[name]}}, indent=1), flush=True)
        stats = await system.emulator.client.stats(key_pattern=r"post (\w+-\d+) of run")
        results["emulator"] = {"posts": stats.posts, "duplicates": stats.duplicates, "requests": stats.requests}
        results["restarts"] = dict(system.restarts)
    finally:
        await sampler.stop()
        (RESULTS / f"load-{system.run}.json").write_text(json.dumps(results, indent=1))
        if scenarios:
            plot(system, sampler, scenarios, RESULTS / f"load-{system.run}.png")
        await system.stop()
    print(json.dumps({"emulator": results.get("emulator")}), flush=True)
    print(f"results: {RESULTS / f'load-{system.run}.json'}  plot: {RESULTS / f'load-{system.run}.png'}")


if __name__ == "__main__":
    asyncio.run(main())
