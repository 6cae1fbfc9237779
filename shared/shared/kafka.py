"""Kafka through FastStream on aiokafka: broker factory, topic creation, event publishing and
at-least-once consumers with a dead-letter path."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared.events import Event, MalformedEvent, UnknownEventType, decode, encode, headers
from shared.logging import get_logger, log_context
from shared.metrics import ServiceMetrics
from shared.settings import KafkaSettings
from shared.topics import dead_letter

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
    """Create the topics that do not exist yet, with the configured partition count.

    Returns the names it created. Existing topics are left as they are.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=settings.request_timeout_ms
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(set(names) - existing)
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


class EventPublisher:
    """Writes events as JSON with their type and version also in Kafka headers."""

    def __init__(self, broker: KafkaBroker, metrics: ServiceMetrics) -> None:
        self._broker = broker
        self._metrics = metrics

    async def publish(self, topic: str, event: Event, *, key: str) -> None:
        await self._broker.publish(encode(event), topic=topic, key=key.encode(), headers=headers(event))
        self._metrics.events_published.labels(topic, event.event_type).inc()


def subscribe(
    broker: KafkaBroker,
    topic: str,
    *,
    group_id: str,
    events: Sequence[type[E]],
    handler: Callable[[E], Awaitable[None]],
    metrics: ServiceMetrics,
    **consumer_options: Any,
) -> None:
    """Consume `events` from `topic` at least once.

    The offset is committed after the handler returns; if it raises, the message is delivered
    again. A message that cannot be decoded goes to `<topic>.dlq` with the reason and its
    origin in headers, and the consumer moves on. Event types this consumer does not know are
    skipped: new types are an additive change to a topic.
    """

    async def consume(message: KafkaMessage) -> None:
        record = message.raw_message
        assert isinstance(record, ConsumerRecord)
        try:
            event = decode(record.value or b"", events)
        except UnknownEventType as exc:
            metrics.events_consumed.labels(topic, exc.event_type, "ignored").inc()
            log.info("event type not handled here", topic=topic, event_type=exc.event_type)
            return
        except MalformedEvent as exc:
            await _dead_letter(broker, record, reason=str(exc), group_id=group_id)
            metrics.dead_letters.labels(topic).inc()
            metrics.events_consumed.labels(topic, "unknown", "dead_lettered").inc()
            return
        started = time.perf_counter()
        with log_context(
            event_id=str(event.event_id),
            correlation_id=event.correlation_id,
            post_id=getattr(event, "post_id", None),
            event_type=event.event_type,
        ):
            try:
                await handler(event)
            except Exception:
                metrics.events_consumed.labels(topic, event.event_type, "error").inc()
                log.exception("handler failed; the message will be delivered again", topic=topic)
                raise
        metrics.handler_seconds.labels(topic, event.event_type).observe(time.perf_counter() - started)
        metrics.events_consumed.labels(topic, event.event_type, "handled").inc()

    consume.__name__ = f"consume_{topic.replace('.', '_').replace('-', '_')}"
    options: dict[str, Any] = {"auto_offset_reset": "earliest", **consumer_options}
    broker.subscriber(topic, group_id=group_id, ack_policy=AckPolicy.NACK_ON_ERROR, **options)(consume)


async def _dead_letter(broker: KafkaBroker, record: ConsumerRecord[Any, Any], *, reason: str, group_id: str) -> None:
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
    await broker.publish(record.value or b"", topic=dead_letter(record.topic), key=record.key, headers=dlq_headers)
    log.warning(
        "message sent to dead-letter topic",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        reason=reason,
    )
