"""The real clock and the Kafka event sink."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from shared.events import Event
from shared.kafka import EventBus


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class BusSink:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    async def emit(self, events: Sequence[tuple[str, Event, str]]) -> None:
        await self._bus.publish_many(events)
