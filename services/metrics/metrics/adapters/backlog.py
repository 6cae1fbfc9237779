"""The publishers' backlog, read from Kafka: for each platform, the end offsets of
`posts.due.<platform>.v1` minus what group `publisher.<platform>` has committed. A publisher
commits each partition up to its oldest unfinished post, so the difference counts the due posts
waiting and in flight (plus at most a second of finished ones, its commit interval).

Two clients: the admin client reads the groups' committed offsets (all at once), and a consumer
without a group, which never subscribes, reads the end offsets of those partitions in one request.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared import topics
from shared.events import Platform
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)


class KafkaBacklog:
    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None
        self._started = False
        self._failing = False

    async def unfinished(self) -> int | None:
        try:
            admin, ends = await self._start()
            positions: dict[TopicPartition, int] = {}
            for found in await asyncio.gather(*(self._committed(admin, p) for p in Platform)):
                positions.update(found)
            end: dict[TopicPartition, int] = await ends.end_offsets(list(positions)) if positions else {}
        except Exception:  # an unknown backlog only means pulls do not wait for it
            if not self._failing:
                log.warning("publishing backlog unknown; planned pulls do not wait for it", exc_info=True)
            self._failing = True
            return None
        if self._failing:
            log.info("publishing backlog readable again")
        self._failing = False
        return sum(max(0, end[tp] - offset) for tp, offset in positions.items())

    async def _start(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        """The clients, made and started on first use: aiokafka binds them to the running loop,
        which the service's composition root does not have yet, and Kafka may come up later."""
        if self._clients is None:
            options = {
                "bootstrap_servers": self._settings.bootstrap_servers,
                "request_timeout_ms": self._settings.request_timeout_ms,
            }
            self._clients = (AIOKafkaAdminClient(**options), AIOKafkaConsumer(**options, enable_auto_commit=False))
        admin, ends = self._clients
        if not self._started:
            await admin.start()  # idempotent, so a failed consumer start can be retried
            await ends.start()
            self._started = True
        return admin, ends

    async def _committed(self, admin: AIOKafkaAdminClient, platform: Platform) -> dict[TopicPartition, int]:
        """Where platform's publisher group stands on its due topic, per partition."""
        prefix = self._settings.topic_prefix
        topic = prefix + topics.posts_due(platform)
        committed = await admin.list_consumer_group_offsets(prefix + topics.publisher_group(platform))
        # A partition the group never committed (no publisher yet) counts as nothing to wait for.
        return {tp: meta.offset for tp, meta in committed.items() if tp.topic == topic and meta.offset >= 0}

    async def close(self) -> None:
        if self._clients is not None:
            admin, ends = self._clients
            await ends.stop()
            await admin.close()
