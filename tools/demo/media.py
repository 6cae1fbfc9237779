"""Demo media served over HTTP while the demo runs: the approval service measures every image and
video before approval, and several publishers download the bytes, so the URLs must be real files."""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

# (name, width, height, colour): square for feeds and pins, 4:5 portrait for Instagram carousels.
IMAGES = (
    ("square.jpg", 1080, 1080, (234, 88, 12)),
    ("portrait.jpg", 1080, 1350, (37, 99, 235)),
    ("sunset.jpg", 1080, 1080, (219, 39, 119)),
)
VIDEO = "vertical.mp4"  # 9:16, 6 s: fits reels, shorts, stories and video posts everywhere


@dataclass(frozen=True)
class DemoMedia:
    base_url: str
    has_video: bool

    def image(self, name: str = "square.jpg") -> dict[str, str]:
        return {"url": f"{self.base_url}/{name}", "type": "image", "mime_type": "image/jpeg"}

    def video(self) -> dict[str, str]:
        return {"url": f"{self.base_url}/{VIDEO}", "type": "video", "mime_type": "video/mp4"}


def prepare(directory: Path) -> bool:
    """Write the files once; False when the video cannot be made (no ffmpeg), so video formats are left out."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, width, height, colour in IMAGES:
        path = directory / name
        if not path.exists():
            image = Image.new("RGB", (width, height), colour)
            ImageDraw.Draw(image).text((width // 10, height // 2), "socialpub demo", fill=(255, 255, 255))
            image.save(path, "JPEG", quality=80)
    video = directory / VIDEO
    if video.exists():
        return True
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return False
    # faststart puts the index first, so a prober reads the head of the file only.
    command = [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=720x1280:rate=25:duration=6"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(video)]
    return subprocess.run(command, check=False).returncode == 0  # noqa: S603 - ffmpeg with fixed arguments


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: it would scroll the status table away."""


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[DemoMedia]:
    """The demo media on a free local port for as long as the block runs."""
    has_video = prepare(directory)
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="demo-media", daemon=True)
    thread.start()
    try:
        yield DemoMedia(f"http://127.0.0.1:{server.server_address[1]}", has_video)
    finally:
        server.shutdown()
        server.server_close()
