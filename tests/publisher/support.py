"""Shared pieces of the publisher tests: the in-process emulator with a transport that turns a
deliberately lost response into what a real client sees, an in-memory checkpoint, a due post."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from shared.events import MediaRef, Platform, PostDue, PostFormat, utc_now

IMAGE = MediaRef(url="https://cdn.example/a.jpg", type="image", mime_type="image/jpeg")
IMAGE2 = MediaRef(url="https://cdn.example/b.jpg", type="image", mime_type="image/jpeg")
VIDEO = MediaRef(url="https://cdn.example/v.mp4", type="video", mime_type="video/mp4")


class LossyASGITransport(httpx.ASGITransport):
    """The emulator's lost response (connection closed after the post was created) surfaces as the
    transport error a real socket gives, instead of the app's exception."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.HTTPError:
            raise
        except Exception as exc:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.") from exc


class MemoryCheckpoint:
    def __init__(self, saved: Mapping[str, str] | None = None) -> None:
        self._saved = dict(saved or {})

    @property
    def saved(self) -> Mapping[str, str]:
        return self._saved

    async def save(self, **ids: str) -> None:
        self._saved.update(ids)


async def fake_media(media: MediaRef) -> bytes:
    return b"\x00" * (2048 if media.type == "video" else 512)


def due(
    platform: Platform,
    *,
    fmt: PostFormat = PostFormat.POST,
    caption: str = "hello",
    media: list[MediaRef] | None = None,
    options: dict[str, Any] | None = None,
    attempt: int = 1,
    account_id: str = "acct-1",
    post_id: str = "post-1",
) -> PostDue:
    return PostDue(
        producer="tests",
        workspace_id="ws",
        correlation_id="asset-1",
        post_id=post_id,
        asset_id="asset-1",
        platform=platform,
        account_id=account_id,
        target_id=f"t-{platform.value}",
        format=fmt,
        caption=caption,
        media=media or [],
        options=options or {},
        due_at=utc_now() - timedelta(seconds=1),
        attempt=attempt,
    )
