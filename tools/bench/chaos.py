"""Fault suite (`make chaos`): a run of 20,000 posts while things break. Prints counts; asserts nothing.

While the posts fall due (about 170/s for two minutes) the suite, at random moments (seeded):
- SIGKILLs each service once (each publisher twice) and starts it again;
- restarts the Kafka broker once;
- has the emulator answer 5xx storms (30 % of every call, 15 s), 429 storms on X and Telegram
  (whose answers name a 5 s reset; other platforms' throttling resets in minutes to hours), and
  lose answers after success: connections dropped after the post was created, and answers held
  past the publisher's 5 s timeout.

At the end every post must be in a terminal state, the emulator must show no post created twice
(reconciliation resolves lost answers where the platform allows, the rest are failed as
publish_unconfirmed), and every post must have its PostScheduled, PostDue and outcome events on
their topics. Exit status 1 when any of that does not hold.

    uv run python -m tools.bench.chaos [--posts 20000] [--seconds 120] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared import topics
from tools.bench.system import RESULTS, System, progress

STACK = [sys.executable, str(Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack.py")]
FAST_RECOVERY = {
    # Retries and take-overs in seconds rather than minutes, so one run sees them all end.
    "PUBLISHER_RETRY_BASE_SECONDS": "2",
    "PUBLISHER_RETRY_CAP_SECONDS": "20",
    "PUBLISHER_LEASE_SECONDS": "20",
    "PUBLISHER_REQUEST_TIMEOUT_SECONDS": "5",
    "PUBLISHER_PROCESSING_TIMEOUT_SECONDS": "60",
    "PUBLISHER_ATTEMPT_TIMEOUT_SECONDS": "120",
}


def log(message: str) -> None:
    print(f"\n[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


async def restart_kafka() -> None:
    for command in ("stop", "start"):
        process = await asyncio.create_subprocess_exec(
            *STACK, command, "kafka", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        if await process.wait() != 0:
            raise RuntimeError(f"stack.py {command} kafka failed")


async def storm(system: System, label: str, seconds: float, **faults: Any) -> None:
    platforms = faults.pop("platforms", [None])
    added = [await system.emulator.client.add_fault(platform=p, **faults) for p in platforms]
    log(f"{label} for {seconds:.0f}s")
    await asyncio.sleep(seconds)
    for fault in added:
        await system.emulator.client.remove_fault(fault.id)
    log(f"{label} over")


def plan(
    system: System, rng: random.Random, window: float, *, kafka: bool
) -> list[tuple[float, str, Callable[[], Awaitable[Any]]]]:
    """(offset from the first due time, label, action), in time order."""
    actions: list[tuple[float, str, Callable[[], Awaitable[Any]]]] = []
    kills = [*system.service_names(), *(n for n in system.service_names() if n.startswith("publisher"))]
    for name in kills:
        actions.append((rng.uniform(0, window), f"SIGKILL {name}", lambda n=name: system.restart(n)))  # type: ignore[misc]
    if kafka:
        actions.append((rng.uniform(0.2, 0.8) * window, "restart Kafka", restart_kafka))
    storms: list[tuple[str, dict[str, Any]]] = [
        ("5xx storm", {"kind": "server_error", "rate": 0.3, "applies_to": "any"}),
        ("429 storm", {"kind": "rate_limit", "rate": 0.3, "retry_after": 5, "platforms": ["x", "telegram"]}),
        ("lost answers (dropped)", {"kind": "lost_response", "rate": 0.05, "hold_ms": 0, "drop_connection": True}),
        ("lost answers (timeout)", {"kind": "lost_response", "rate": 0.05, "hold_ms": 8000}),
    ]
    for label, faults in storms:
        actions.append(
            (rng.uniform(0, window), label, lambda lb=label, f=faults: storm(system, lb, 15, **dict(f)))  # type: ignore[misc]
        )
    return sorted(actions, key=lambda a: a[0])


async def run_actions(actions: list[tuple[float, str, Callable[[], Awaitable[Any]]]], origin: float) -> list[str]:
    done: list[str] = []

    async def one(offset: float, label: str, action: Callable[[], Awaitable[Any]]) -> None:
        await asyncio.sleep(max(0.0, origin + offset - time.time()))
        log(label)
        try:
            result = await action()
            done.append(label + (f" (back in {result:.1f}s)" if isinstance(result, float) else ""))
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            done.append(f"{label} FAILED: {exc}")
            log(f"{label} failed: {exc}")

    await asyncio.gather(*(one(*a) for a in actions))
    return done


def check(system: System, ids: set[str], emulator: dict[str, int]) -> dict[str, Any]:
    posts = [system.tracker.posts[i] for i in ids]
    unconfirmed = sum(1 for p in posts if p.error_code == "publish_unconfirmed")
    missing = {
        "scheduled": sum(1 for p in posts if not p.events[topics.POSTS_SCHEDULED]),
        "due": sum(1 for p in posts if p.due_emitted is None),
        "outcome": sum(1 for p in posts if p.outcome is None),
    }
    published = sum(1 for p in posts if p.outcome == "published")
    return {
        "unconfirmed": unconfirmed,
        "missing_events": missing,
        # Every live post is one we reported published, or one a person is asked to check.
        "live_but_not_reported": max(0, emulator["posts"] - published - unconfirmed),
        "ok": emulator["duplicates"] == 0 and not any(missing.values()),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=120, help="the due times spread over this long")
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-kafka-restart", action="store_true", help="when others share the broker")
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - a reproducible fault schedule, not a secret
    system = System("chaos", publishers=args.publishers, extra_env=FAST_RECOVERY)
    print(f"starting the system; logs in {system.logs}", flush=True)
    await system.start(args.accounts)
    results: dict[str, Any] = {"posts": args.posts, "seconds": args.seconds, "seed": args.seed}
    try:
        first = datetime.now(UTC) + timedelta(seconds=30 + args.posts / 2000)
        dues = [first + timedelta(seconds=i * args.seconds / args.posts) for i in range(args.posts)]
        ids = await system.approve(dues, tag="chaos")
        log(f"{args.posts} posts due from {first:%H:%M:%S} over {args.seconds}s")
        actions = plan(system, rng, args.seconds, kafka=not args.no_kafka_restart)
        chaos = asyncio.create_task(run_actions(actions, first.timestamp()))
        started, deadline = time.time(), dues[-1].timestamp() + 900
        while (done := system.tracker.finished(ids)) < len(ids) and time.time() < deadline:
            progress(done, len(ids), started, f"{system.tracker.published(ids)} published")
            await asyncio.sleep(1)
        results["actions"] = await chaos
        print(flush=True)
        stats = await system.emulator.client.stats(key_pattern=r"post (\w+-\d+) of run")
        emulator = {"posts": stats.posts, "duplicates": stats.duplicates}
        results["emulator"] = emulator
        results.update(system.tracker.summary(ids))
        results.update(check(system, ids, emulator))
    finally:
        (RESULTS / f"chaos-{system.run}.json").write_text(json.dumps(results, indent=1, default=str))
        await system.stop()
    print(json.dumps(results, indent=1, default=str))
    print(f"results: {RESULTS / f'chaos-{system.run}.json'}")
    return 0 if results.get("ok") else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
