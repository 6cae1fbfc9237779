"""Two scheduler replicas share the posts by partition; one is SIGKILLed while posts fall due,
and the survivor takes its partitions over: every post is handed over, none is lost."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from shared import topics
from shared.events import AssetApproved, Platform, PostDue, PostFormat, Schedule, Target, utc_now
from shared.ids import post_id_for
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings, MongoSettings
from tests.support import ServiceProcess, TopicWatcher, eventually, metric_value, running_bus, until

pytestmark = pytest.mark.integration

POSTS = 600
PARTITIONS = 6


def stop_if_running(replica: ServiceProcess) -> None:
    if replica.process.poll() is None:
        replica.terminate()


async def test_a_killed_replica_loses_no_post(
    kafka_settings: KafkaSettings, mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    run = uuid4().hex[:8]
    settings = kafka_settings.model_copy(update={"topic_prefix": f"repl{run}.", "partitions": PARTITIONS})
    await ensure_topics(settings, topics.all_topics())
    env = {
        "SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "SOCIALPUB_KAFKA__TOPIC_PREFIX": settings.topic_prefix,
        "SOCIALPUB_KAFKA__PARTITIONS": str(PARTITIONS),
        "SOCIALPUB_MONGO__URL": mongo_settings.url.get_secret_value(),
        "SCHEDULER_MONGO__DATABASE": f"test_replicas_{run}",
        "SCHEDULER_SESSION_TIMEOUT_MS": "6000",
    }
    replicas = [ServiceProcess("scheduler", env, tmp_path / f"replica{i}.log") for i in range(2)]
    watcher = TopicWatcher(settings.bootstrap_servers, settings.topic_prefix, [topics.posts_due(p) for p in Platform])
    async with contextlib.AsyncExitStack() as stack:
        for replica in replicas:
            stack.callback(stop_if_running, replica)
            await replica.wait_ready()
        bus = await stack.enter_async_context(running_bus(settings))
        await watcher.start()
        stack.push_async_callback(watcher.stop)

        async def owned() -> float:
            return sum([await metric_value(r.url, "socialpub_scheduler_owned_partitions") for r in replicas])

        async def all_owned() -> bool:
            return await owned() == PARTITIONS

        await until(all_owned, what="every partition owned")
        assert all([await metric_value(r.url, "socialpub_scheduler_owned_partitions") > 0 for r in replicas])

        start = utc_now() + timedelta(seconds=5)
        rng = random.Random(7)
        expected: set[str] = set()
        for i in range(POSTS):
            platform = list(Platform)[i % len(Platform)]
            asset_id = f"asset-{run}-{i}"
            due = start + timedelta(seconds=rng.uniform(0, 10))
            target = Target(target_id="t", platform=platform, account_id=f"acct-{i % 50}", format=PostFormat.POST)
            event = AssetApproved(
                producer="tests",
                workspace_id="ws",
                correlation_id=asset_id,
                asset_id=asset_id,
                targets=[target],
                schedule=Schedule(at_utc=due),
            )
            await bus.publish(topics.ASSETS_APPROVED, event, key=asset_id)
            expected.add(post_id_for(asset_id, "t"))

        # Kill one replica while its posts are falling due.
        await asyncio.sleep(max(0.0, (start - utc_now()).total_seconds()) + 4)
        replicas[0].kill()

        await eventually(
            lambda: {e.post_id for e in watcher.events(PostDue)} >= expected,
            within=60,
            what=f"a PostDue for each of {POSTS} posts",
        )
        await asyncio.sleep(2)
        counts = Counter(e.post_id for e in watcher.events(PostDue))
        duplicates = sum(c - 1 for c in counts.values() if c > 1)
        print(f"\n{POSTS} posts, replica killed mid-burst: missing 0, emitted twice {duplicates}")
        assert set(counts) == expected
        # Only posts whose handover was not yet recorded when the replica died may repeat.
        assert duplicates < POSTS / 2
        assert all(e.attempt == 1 for e in watcher.events(PostDue))
    assert replicas[1].process.returncode == 0, replicas[1].log_tail()
