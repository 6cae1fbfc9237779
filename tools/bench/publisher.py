"""Publisher benchmark on the real local stack. Prints figures; asserts nothing.

One platform (X by default: one call per post), the emulator as a real process at 50 ms latency,
1,000 accounts, one and then two publisher instances. Every post is due when it is sent; the
figures are publishes per second (first due to last published), due-to-published p50/p99
(PostPublished's occurred_at minus due_at), and the emulator's duplicate count (must be 0).

    uv run python -m tools.bench.publisher [--posts 10000] [--accounts 1000] [--latency-ms 50]
                                           [--instances 1 2] [--platform x]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import uuid4

from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared import topics
from shared.credentials import CredentialsSettings, CredentialStore, OAuthTokens, build_cipher
from shared.events import AccountStatus, Platform, PostDue, PostFormat, utc_now
from shared.kafka import ensure_topics
from shared.mongo import build_client
from shared.settings import KafkaSettings, MongoSettings
from tests.publisher.harness import Emulator, drop_topics
from tests.support import ServiceProcess, metric_value, running_bus

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"
PARTITIONS = 12


@dataclass
class Seen:
    published: dict[str, float] = field(default_factory=dict)  # post_id -> occurred_at
    received: dict[str, float] = field(default_factory=dict)
    duplicates_seen: int = 0


async def watch(settings: KafkaSettings, seen: Seen, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        settings.topic_prefix + topics.POSTS_PUBLISHED,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.time()
            for records in batch.values():
                for r in records:
                    data = json.loads(r.value)
                    if data["post_id"] in seen.published:
                        seen.duplicates_seen += 1
                    seen.published[data["post_id"]] = datetime.fromisoformat(data["occurred_at"]).timestamp()
                    seen.received[data["post_id"]] = now
    finally:
        await consumer.stop()


async def run(args: argparse.Namespace, instances: int) -> dict[str, float | int | str]:  # noqa: PLR0915
    run_id = uuid4().hex[:8]
    platform = Platform(args.platform)
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap, partitions=PARTITIONS, topic_prefix=f"bench{run_id}.")
    mongo = MongoSettings(url=SecretStr(args.mongo))
    logs = RESULTS / f"publisher-{run_id}"
    logs.mkdir(parents=True, exist_ok=True)
    emulator = Emulator(logs / "emulator.log", "--latency-ms", str(args.latency_ms), "--processing-ms", "0",
                        "--no-realistic-limits")  # fmt: skip
    key = Fernet.generate_key().decode()
    creds = CredentialsSettings(database=f"bench_pubcreds_{run_id}", keys=[SecretStr(key)])
    client = build_client(mongo)
    store = CredentialStore.in_database(client[creds.database], build_cipher(creds))
    processes: list[ServiceProcess] = []
    try:
        await emulator.wait_ready()
        await ensure_topics(kafka, topics.all_topics())
        infos = await emulator.client.create_accounts(
            [{"platform": platform.value, "never_expires": True} for _ in range(args.accounts)]
        )
        accounts = []
        for n, info in enumerate(infos):
            account_id = f"bench-{n}"
            await store.save(
                account_id=account_id, workspace_id="bench", platform=platform.value,
                tokens=OAuthTokens(access_token=SecretStr(info.access_token)), status=AccountStatus.ACTIVE,
                external_id=info.account_id, profile={"username": info.username, "chat_id": "@bench"},
            )  # fmt: skip
            accounts.append(account_id)
        env = {
            "SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "SOCIALPUB_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
            "SOCIALPUB_KAFKA__PARTITIONS": str(PARTITIONS),
            "SOCIALPUB_MONGO__URL": args.mongo,
            "SOCIALPUB_LOG__LEVEL": "WARNING",
            "PUBLISHER_MONGO__DATABASE": f"bench_pub_{run_id}",
            "PUBLISHER_CREDENTIALS__DATABASE": creds.database,
            "PUBLISHER_CREDENTIALS__KEYS": json.dumps([key]),
            "PUBLISHER_EMULATOR_URL": emulator.url,
            "PUBLISHER_MAX_IN_FLIGHT": str(args.in_flight),
            f"PUBLISHER_PLATFORMS__{platform.value.upper()}__PUBLISH_LIMIT": "1000000",
        }
        for n in range(instances):
            processes.append(
                ServiceProcess("publisher", env, logs / f"publisher-{n}.log", "--platform", platform.value)
            )
        for process in processes:
            await process.wait_ready()
        await asyncio.sleep(8)  # let the group settle so the run does not measure a rebalance

        seen, stop = Seen(), asyncio.Event()
        watcher = asyncio.create_task(watch(kafka, seen, stop))
        due: dict[str, float] = {}
        async with running_bus(kafka) as bus:
            started = time.time()
            chunk = []
            for n in range(args.posts):
                account_id = accounts[n % len(accounts)]
                now = utc_now()
                job = PostDue(
                    producer="bench", workspace_id="bench", correlation_id=f"a{n}", post_id=f"{run_id}-{n}",
                    asset_id=f"a{n}", platform=platform, account_id=account_id, target_id="t",
                    format=PostFormat.POST, caption=f"bench post {n} {run_id}", due_at=now, attempt=1,
                )  # fmt: skip
                due[job.post_id] = now.timestamp()
                chunk.append((topics.posts_due(platform), job, account_id))
                if len(chunk) == 2000:
                    await bus.publish_many(chunk)
                    chunk = []
            if chunk:
                await bus.publish_many(chunk)
            sent = time.time()
            deadline = time.time() + args.timeout
            while len(seen.published) < args.posts and time.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        stop.set()
        await watcher
        lags = sorted(seen.published[p] - due[p] for p in seen.published if p in due)
        last = max(seen.published.values()) if seen.published else started
        stats = await emulator.client.stats(key_pattern=r"bench post (\d+)")
        calls = await metric_value(processes[0].url, "socialpub_publisher_publish_seconds_sum")
        count = await metric_value(processes[0].url, "socialpub_publisher_publish_seconds_count")
        result: dict[str, float | int | str] = {
            "platform": platform.value,
            "instances": instances,
            "posts": args.posts,
            "published": len(seen.published),
            "send_seconds": round(sent - started, 2),
            "throughput_per_s": round(len(seen.published) / max(1e-9, last - started), 1),
            "p50_due_to_published_s": round(statistics.median(lags), 3) if lags else -1,
            "p99_due_to_published_s": round(lags[int(len(lags) * 0.99) - 1], 3) if lags else -1,
            "emulator_posts": stats.posts,
            "emulator_duplicates": stats.duplicates,
            "published_events_repeated": seen.duplicates_seen,
            "mean_platform_call_s_instance0": round(calls / count, 4) if count else -1,
        }
        return result
    finally:
        for process in processes:
            if process.process.poll() is None:
                process.terminate()
        await emulator.close()
        await drop_topics(kafka)
        for name in (creds.database, f"bench_pub_{run_id}"):
            await client.drop_database(name)
        await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--platform", default="x")
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--bootstrap", default="localhost:9092")
    parser.add_argument("--mongo", default="mongodb://localhost:27017/")
    args = parser.parse_args()
    for instances in args.instances:
        posts = args.posts * instances
        result = await run(argparse.Namespace(**{**vars(args), "posts": posts}), instances)
        print(json.dumps(result), flush=True)
    print(f"logs under {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
