"""Measuring media at its URL: a bounded ranged download for images (read with Pillow) and
ffprobe for videos. Every probe is limited in time, and in bytes: images are read up to a cap
(headers and metadata come first), ffprobe reads only what it needs to find the streams (it
issues range requests itself, so an index at the end of a file costs one extra small read).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

from approval.media import MediaUnreachable, MediaUnreadable, ProbedMedia, ProbeUnavailable
from shared.events import MediaRef

_CONTENT_RANGE_TOTAL = re.compile(r"/(\d+)\s*$")


class MediaProbeSettings(BaseModel):
    enabled: bool = Field(default=True, description="Measure media before approval (off: trust the metadata)")
    timeout_seconds: float = Field(default=15, gt=0, description="Per media file")
    image_max_bytes: int = Field(default=4 * 1024 * 1024, gt=0, description="Read at most this much of an image")
    video_probe_bytes: int = Field(default=5_000_000, ge=32, description="ffprobe -probesize")
    ffprobe_path: str = "ffprobe"


class HttpMediaProbe:
    def __init__(self, client: httpx.AsyncClient, settings: MediaProbeSettings) -> None:
        self._client = client
        self._settings = settings

    async def probe(self, media: MediaRef) -> ProbedMedia:
        if not media.url.startswith(("https://", "http://")):
            raise MediaUnreachable(media.url, "only http and https URLs can be fetched")
        try:
            async with asyncio.timeout(self._settings.timeout_seconds):
                if media.type == "image":
                    return await self._image(media.url)
                return await self._video(media.url)
        except TimeoutError:
            raise MediaUnreachable(media.url, f"no answer within {self._settings.timeout_seconds:g} s") from None

    async def _head(self, url: str, max_bytes: int) -> tuple[bytes, int | None]:
        """The first `max_bytes` (asked for with a range request, and cut off there even if the
        server sends everything) and the whole file's size when the server tells it."""
        headers = {"Range": f"bytes=0-{max_bytes - 1}"}
        try:
            async with self._client.stream("GET", url, headers=headers, follow_redirects=True) as response:
                if response.status_code >= 400:
                    raise MediaUnreachable(url, f"the server answered HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) >= max_bytes:
                        break
                return bytes(body[:max_bytes]), _total_size(response)
        except httpx.HTTPError as exc:
            raise MediaUnreachable(url, f"could not be fetched ({type(exc).__name__})") from exc

    async def _image(self, url: str) -> ProbedMedia:
        data, total = await self._head(url, self._settings.image_max_bytes)
        try:
            with Image.open(io.BytesIO(data)) as image:  # reads the header only; no decoding
                width, height = image.size
                mime = Image.MIME.get(image.format or "")
        except (UnidentifiedImageError, OSError) as exc:
            raise MediaUnreadable(url, "is not an image Pillow can read") from exc
        return ProbedMedia(kind="image", mime_type=mime, width=width, height=height, size_bytes=total)

    async def _video(self, url: str) -> ProbedMedia:
        _, total = await self._head(url, 1)  # reachable? and how large?
        report = await self._ffprobe(url)
        stream = next((s for s in report.get("streams", []) if s.get("codec_type") == "video"), None)
        if stream is None or not stream.get("codec_name"):
            raise MediaUnreadable(url, "has no video stream ffprobe can decode")
        duration = report.get("format", {}).get("duration") or stream.get("duration")
        return ProbedMedia(
            kind="video",
            width=stream.get("width"),
            height=stream.get("height"),
            duration_seconds=round(float(duration), 3) if duration else None,
            size_bytes=total,
        )

    async def _ffprobe(self, url: str) -> dict[str, Any]:
        args = [
            *("-v", "error", "-print_format", "json", "-show_format", "-show_streams"),
            *("-protocol_whitelist", "http,https,tcp,tls,crypto"),
            *("-probesize", str(self._settings.video_probe_bytes)),
            *("-rw_timeout", str(int(self._settings.timeout_seconds * 1_000_000))),
        ]
        try:
            process = await asyncio.create_subprocess_exec(
                self._settings.ffprobe_path,
                *args,
                url,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise ProbeUnavailable(
                f"ffprobe is not installed ({self._settings.ffprobe_path}); videos cannot be checked"
            ) from None
        try:
            out, err = await process.communicate()
        except asyncio.CancelledError:  # the timeout: do not leave ffprobe running
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no detail"]
            raise MediaUnreadable(url, f"is not a video ffprobe can read ({detail[0][:200]})")
        report: dict[str, Any] = json.loads(out or b"{}")
        return report


def _total_size(response: httpx.Response) -> int | None:
    if response.status_code == 206:
        match = _CONTENT_RANGE_TOTAL.search(response.headers.get("content-range", ""))
        return int(match.group(1)) if match else None
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None
