"""Publishing what handlers return. Asset decisions are saved together with their events (an
outbox inside the asset document, since there are no transactions); an event leaves the outbox
once Kafka has acknowledged it, and a periodic relay sends whatever a crash left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from approval.entrypoints.http import EventsUnavailable
from approval.ports import AssetRepository, Clock, Outgoing
from shared.kafka import EventBus
from shared.logging import get_logger

log = get_logger(__name__)

RELAY_GRACE = timedelta(seconds=20)


class Emitter:
    def __init__(self, bus: EventBus, assets: AssetRepository, clock: Clock) -> None:
        self._bus = bus
        self._assets = assets
        self._clock = clock

    async def __call__(self, outgoing: Sequence[Outgoing]) -> None:
        for item in outgoing:
            try:
                await self._bus.publish(item.topic, item.event, key=item.key)
            except Exception as exc:
                if item.outbox_of is not None:
                    # Saved with the decision: the relay sends it later, the caller's change stands.
                    log.warning("event left in the outbox for the relay", asset_id=item.outbox_of, error=str(exc))
                    continue
                raise EventsUnavailable(
                    f"could not send {item.event.event_type} to Kafka; nothing was changed, try again"
                ) from exc
            if item.outbox_of is not None:
                await self._assets.outbox_done(item.outbox_of, [str(item.event.event_id)])

    async def relay_once(self) -> int:
        sent = 0
        for _asset_id, items in await self._assets.pending_outbox(self._clock.now() - RELAY_GRACE):
            await self(items)
            sent += len(items)
        if sent:
            log.info("outbox relayed", events=sent)
        return sent


async def every(seconds: float, job_name: str, job: Callable[[], Awaitable[object]]) -> None:
    """Run `job()` every `seconds` until cancelled; a failing run is logged and retried next time."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("periodic job failed", job=job_name)
