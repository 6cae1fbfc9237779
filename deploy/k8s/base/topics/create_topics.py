"""Create every Kafka topic of the contract with its partition count, replication and retention.

Runs in the service image (it needs `shared` for the topic catalog and aiokafka), as the Kubernetes
Job `socialpub-topics` and the compose service `topics`:

    python create_topics.py [--dry-run]

Every topic in `shared.topics.CATALOG` is created, plus its `<topic>.dlq`. Settings (environment):

| variable | default | meaning |
|---|---|---|
| `SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS` | `localhost:9092` | brokers |
| `SOCIALPUB_KAFKA__PARTITIONS` | `12` | partitions of every topic (post-keyed ones must share it) |
| `TOPICS_DUE_PARTITIONS` | the same | partitions of `posts.due.<platform>.v1` (most publisher replicas) |
| `TOPICS_DLQ_PARTITIONS` | `3` | partitions of the `.dlq` topics |
| `SOCIALPUB_KAFKA__REPLICATION_FACTOR` | `1` | use 3 on a real cluster |
| `TOPICS_RETENTION_MS` | 7 days | retention of the event topics (downstream analytics read them) |
| `TOPICS_DLQ_RETENTION_MS` | 30 days | retention of the dead-letter topics (time to replay) |
| `SOCIALPUB_KAFKA__TOPIC_PREFIX` | empty | prepended to every name, as the services do |

Existing topics keep their partitions: a post-keyed topic whose count differs from the others is
an error (the scheduler's partition ownership would break), any other mismatch is a warning.
Retention and min.insync.replicas of existing topics are set to the values above (AlterConfigs
replaces a topic's dynamic configs, so manage topic configs here, not by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from shared.topics import CATALOG, dead_letter

DAY_MS = 24 * 60 * 60 * 1000
# Post-keyed topics the scheduler reads as one co-partitioned stream (docs/scheduler.md).
POST_KEY = "post_id"


@dataclass(frozen=True)
class TopicsConfig:
    partitions: int = 12
    due_partitions: int = 12
    dlq_partitions: int = 3
    replication_factor: int = 1
    retention_ms: int = 7 * DAY_MS
    dlq_retention_ms: int = 30 * DAY_MS
    prefix: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TopicsConfig:
        partitions = int(env.get("SOCIALPUB_KAFKA__PARTITIONS", "12"))
        return cls(
            partitions=partitions,
            due_partitions=int(env.get("TOPICS_DUE_PARTITIONS", str(partitions))),
            dlq_partitions=int(env.get("TOPICS_DLQ_PARTITIONS", "3")),
            replication_factor=int(env.get("SOCIALPUB_KAFKA__REPLICATION_FACTOR", "1")),
            retention_ms=int(env.get("TOPICS_RETENTION_MS", str(7 * DAY_MS))),
            dlq_retention_ms=int(env.get("TOPICS_DLQ_RETENTION_MS", str(30 * DAY_MS))),
            prefix=env.get("SOCIALPUB_KAFKA__TOPIC_PREFIX", ""),
        )


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)
    co_partitioned: bool = False


def plan(config: TopicsConfig) -> list[TopicPlan]:
    """Every catalog topic and its dead-letter topic, with partitions and configs."""
    min_isr = str(min(2, config.replication_factor))
    topics: list[TopicPlan] = []
    for spec in CATALOG:
        is_due = spec.name.startswith("posts.due.")
        topics.append(
            TopicPlan(
                config.prefix + spec.name,
                config.due_partitions if is_due else config.partitions,
                config.replication_factor,
                {"retention.ms": str(config.retention_ms), "min.insync.replicas": min_isr, "cleanup.policy": "delete"},
                co_partitioned=spec.key == POST_KEY,
            )
        )
        topics.append(
            TopicPlan(
                config.prefix + dead_letter(spec.name),
                config.dlq_partitions,
                config.replication_factor,
                {
                    "retention.ms": str(config.dlq_retention_ms),
                    "min.insync.replicas": min_isr,
                    "cleanup.policy": "delete",
                },
            )
        )
    return topics


def check_existing(topics: list[TopicPlan], existing: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """Errors and warnings about topics that already exist with another partition count."""
    errors: list[str] = []
    warnings: list[str] = []
    for topic in topics:
        actual = existing.get(topic.name)
        if actual is None or actual == topic.partitions:
            continue
        message = f"{topic.name} has {actual} partitions, planned {topic.partitions}"
        if topic.co_partitioned:
            errors.append(f"{message}: post-keyed topics must share one count (scheduler ownership)")
        else:
            warnings.append(f"{message}: left as it is (changing it moves keys between consumers)")
    return errors, warnings


async def apply(bootstrap_servers: str, topics: list[TopicPlan]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=40_000)
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in topics])
        existing = {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}
        errors, warnings = check_existing(topics, existing)
        for line in warnings:
            print(f"WARNING {line}", flush=True)
        missing = [t for t in topics if t.name not in existing]
        if missing:
            new = [NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=t.configs) for t in missing]
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                print("some topics were created concurrently; run again to verify", flush=True)
        for topic in missing:
            print(f"created {topic.name} partitions={topic.partitions} {_configs(topic)}", flush=True)
        present = [t for t in topics if t.name in existing]
        if present:
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t.name, configs=t.configs) for t in present]
            )
            for topic in present:
                print(f"exists  {topic.name} partitions={existing[topic.name]} {_configs(topic)}", flush=True)
        for line in errors:
            print(f"ERROR {line}", file=sys.stderr, flush=True)
        return 1 if errors else 0
    finally:
        await admin.close()


def _configs(topic: TopicPlan) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(topic.configs.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan, contact no broker")
    args = parser.parse_args(argv)
    config = TopicsConfig.from_env(os.environ)
    topics = plan(config)
    if args.dry_run:
        for topic in topics:
            print(f"{topic.name} partitions={topic.partitions} rf={topic.replication_factor} {_configs(topic)}")
        return 0
    bootstrap = os.environ.get("SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS", "localhost:9092")
    status = asyncio.run(apply(bootstrap, topics))
    print(f"{len(topics)} topics checked on {bootstrap}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
