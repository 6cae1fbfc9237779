"""The real clock, the Kafka event sink and the media downloader."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import httpx

from publisher.platforms.base import PlatformError
from publisher.ports import Outgoing
from shared.events import ErrorCode, MediaRef
from shared.kafka import EventBus


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class BusSink:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    async def emit(self, events: Sequence[Outgoing]) -> None:
        await self._bus.publish_many(events)


class MediaDownloader:
    """Fetches media bytes for the platforms that need an upload (X, YouTube)."""

    def __init__(self, client: httpx.AsyncClient, *, max_bytes: int = 512 * 1024 * 1024) -> None:
        self._client = client
        self._max_bytes = max_bytes

    async def __call__(self, media: MediaRef) -> bytes:
        try:
            response = await self._client.get(media.url)
        except httpx.TransportError as exc:
            raise PlatformError(ErrorCode.NETWORK_ERROR, f"could not fetch media {media.url}: {exc}") from exc
        if response.status_code >= 400:
            code = ErrorCode.NETWORK_ERROR if response.status_code >= 500 else ErrorCode.CONTENT_REJECTED
            raise PlatformError(code, f"media {media.url} answered {response.status_code}")
        if len(response.content) > self._max_bytes:
            raise PlatformError(ErrorCode.CONTENT_REJECTED, f"media {media.url} is larger than {self._max_bytes} bytes")
        return response.content
