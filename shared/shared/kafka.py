"""Kafka through FastStream on aiokafka: broker factory, topic creation, and the EventBus that
publishes events and runs at-least-once consumers with a dead-letter path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared.events import Event, MalformedEvent, UnknownEventType, decode, encode, headers
from shared.logging import get_logger, log_context
from shared.metrics import ServiceMetrics
from shared.settings import KafkaSettings
from shared.topics import dead_letter as dead_letter_topic

E = TypeVar("E", bound=Event)

log = get_logger(__name__)


def build_broker(settings: KafkaSettings, *, service: str, metrics: ServiceMetrics) -> KafkaBroker:
    """A broker whose producer is idempotent and waits for all in-sync replicas."""
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=service,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=settings.request_timeout_ms,
        middlewares=[metrics.kafka_middleware(service)],
        # A stdlib logger, so FastStream's lines pass through our redacting formatter.
        logger=logging.getLogger("faststream.broker"),
        # Per-message "Received"/"Processed" lines only at DEBUG: at agency volume they drown the rest.
        log_level=logging.DEBUG,
        # Let an in-flight handler finish on shutdown before its offset is committed.
        graceful_timeout=20.0,
    )


async def ensure_topics(settings: KafkaSettings, names: Iterable[str]) -> list[str]:
    """Create the topics (prefixed) that do not exist yet, with the configured partition count.

    Returns the names it created. Existing topics are left as they are.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=settings.request_timeout_ms
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted({settings.topic_prefix + name for name in names} - existing)
        if not missing:
            return []
        new = [
            NewTopic(name, num_partitions=settings.partitions, replication_factor=settings.replication_factor)
            for name in missing
        ]
        with contextlib.suppress(TopicAlreadyExistsError):  # another replica created them first
            await admin.create_topics(new)
        log.info("topics created", topics=missing, partitions=settings.partitions)
        return missing
    finally:
        await admin.close()


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """A decoded event with where it came from (the partition decides who owns a post)."""

    event: E
    topic: str
    partition: int
    offset: int


class EventBus:
    """Publishes and consumes events on the contract's topic names (plus an optional prefix).

    Events travel as JSON with event_type, schema_version and event_id also in Kafka headers.
    Consumers commit an offset only after the handler returns; if it raises, the message is
    delivered again. A message that cannot be decoded goes to `<topic>.dlq` with the reason and
    its origin in headers, and consumption moves on. Event types a consumer does not know are
    skipped: new types are an additive change to a topic.
    """

    def __init__(
        self, broker: KafkaBroker, settings: KafkaSettings, metrics: ServiceMetrics, *, client_id: str
    ) -> None:
        self.broker = broker
        self._client_id = client_id
        self._settings = settings
        self._metrics = metrics
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Start the producer. Events are sent with aiokafka directly: through FastStream's
        publish a message costs ten times as much, which a burst of due posts cannot afford."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=self._settings.linger_ms,
            request_timeout_ms=self._settings.request_timeout_ms,
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()  # flushes what is still buffered
            self._producer = None

    async def _send(
        self, topic: str, value: bytes, *, key: bytes | None, headers: dict[str, str]
    ) -> asyncio.Future[Any]:
        if self._producer is None:
            raise RuntimeError("EventBus.start() was not called")
        sent: asyncio.Future[Any] = await self._producer.send(
            topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
        )
        return sent

    def _fetch_options(self) -> dict[str, int]:
        return {
            "fetch_min_bytes": self._settings.fetch_min_bytes,
            "fetch_max_wait_ms": self._settings.fetch_max_wait_ms,
        }

    def topic(self, name: str) -> str:
        return self._settings.topic_prefix + name

    def group(self, name: str) -> str:
        """The consumer group id: prefixed like the topics, so isolated runs never rebalance each other."""
        return self._settings.topic_prefix + name

    def contract_name(self, topic: str) -> str:
        return topic.removeprefix(self._settings.topic_prefix)

    async def publish(self, topic: str, event: Event, *, key: str) -> None:
        """Publish one event and wait until the broker has acknowledged it."""
        await self.publish_many([(topic, event, key)])

    async def publish_many(self, items: Sequence[tuple[str, Event, str]]) -> None:
        """Publish (topic, event, key) items and wait until the broker has acknowledged them all."""
        pending = [
            await self._send(self.topic(topic), encode(event), key=key.encode(), headers=headers(event))
            for topic, event, key in items
        ]
        await asyncio.gather(*pending)
        for topic, event, _ in items:
            self._metrics.events_published.labels(topic, event.event_type).inc()

    def subscribe(
        self,
        topic: str,
        *,
        group_id: str,
        events: Sequence[type[E]],
        handler: Callable[[E], Awaitable[None]],
        **consumer_options: Any,
    ) -> None:
        """Handle each event of `events` on `topic` on its own."""

        async def consume(message: KafkaMessage) -> None:
            record = message.raw_message
            assert isinstance(record, ConsumerRecord)
            delivery = await self._decode(record, events, group_id)
            if delivery is not None:
                await self._handle(delivery.event, topic, lambda: handler(delivery.event))

        consume.__name__ = f"consume_{_identifier(topic)}"
        self.broker.subscriber(
            self.topic(topic),
            group_id=self.group(group_id),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            **{"auto_offset_reset": "earliest", **self._fetch_options(), **consumer_options},
        )(consume)

    def subscribe_batch(
        self,
        topics: Sequence[str],
        *,
        group_id: str,
        events: Sequence[type[E]],
        handler: Callable[[list[Delivery[E]]], Awaitable[None]],
        max_records: int = 500,
        **consumer_options: Any,
    ) -> None:
        """Handle the events of `topics` in batches (one commit per batch), for throughput."""

        async def consume_batch(message: KafkaMessage) -> None:
            records = message.raw_message
            assert isinstance(records, tuple)
            deliveries = [d for r in records if (d := await self._decode(r, events, group_id)) is not None]
            if deliveries:
                await self._handle(None, ",".join(topics), lambda: handler(deliveries))

        consume_batch.__name__ = f"consume_batch_{_identifier(group_id)}"
        self.broker.subscriber(
            *(self.topic(t) for t in topics),
            group_id=self.group(group_id),
            batch=True,
            max_records=max_records,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            **{"auto_offset_reset": "earliest", **self._fetch_options(), **consumer_options},
        )(consume_batch)

    async def _decode(
        self, record: ConsumerRecord[Any, Any], events: Sequence[type[E]], group_id: str
    ) -> Delivery[E] | None:
        topic = self.contract_name(record.topic)
        try:
            event = decode(record.value or b"", events)
        except UnknownEventType as exc:
            self._metrics.events_consumed.labels(topic, exc.event_type, "ignored").inc()
            log.info("event type not handled here", topic=topic, event_type=exc.event_type)
            return None
        except MalformedEvent as exc:
            await self.dead_letter(record, reason=str(exc), group_id=group_id)
            self._metrics.events_consumed.labels(topic, "unknown", "dead_lettered").inc()
            return None
        self._metrics.events_consumed.labels(topic, event.event_type, "received").inc()
        return Delivery(event, topic, record.partition, record.offset)

    async def _handle(self, event: Event | None, topic: str, call: Callable[[], Awaitable[None]]) -> None:
        started = time.perf_counter()
        event_type = event.event_type if event else "batch"
        context = (
            {
                "event_id": str(event.event_id),
                "correlation_id": event.correlation_id,
                "post_id": getattr(event, "post_id", None),
                "event_type": event.event_type,
            }
            if event
            else {}
        )
        with log_context(**context):
            try:
                await call()
            except Exception:
                self._metrics.handler_errors.labels(topic, event_type).inc()
                log.exception("handler failed; the message will be delivered again", topic=topic)
                raise
        self._metrics.handler_seconds.labels(topic, event_type).observe(time.perf_counter() - started)

    async def dead_letter(self, record: ConsumerRecord[Any, Any], *, reason: str, group_id: str) -> None:
        """Send `record` to `<its topic>.dlq` with the reason and its origin in `dlq.*` headers, and
        count it in `socialpub_dead_letters_total{topic}` (the contract name of the source topic).
        The one way any consumer dead-letters a message, its own aiokafka loops included, so every
        dead letter is counted exactly once."""
        original = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq.")]
        dlq_headers = {k: v.decode(errors="replace") for k, v in original}
        dlq_headers.update(
            {
                "dlq.reason": reason[:1000],
                "dlq.source_topic": record.topic,
                "dlq.source_partition": str(record.partition),
                "dlq.source_offset": str(record.offset),
                "dlq.consumer_group": group_id,
            }
        )
        await (
            await self._send(dead_letter_topic(record.topic), record.value or b"", key=record.key, headers=dlq_headers)
        )
        self._metrics.dead_letters.labels(self.contract_name(record.topic)).inc()
        log.warning(
            "message sent to dead-letter topic",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )


def _identifier(name: str) -> str:
    return name.replace(".", "_").replace("-", "_").replace(",", "__")
