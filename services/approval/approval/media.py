"""What probing a media file found, and how that is checked against the asset's claims.

Pure: the adapter behind the MediaProbe port fetches and measures; this module compares. The
platform limits themselves are the ones metadata is checked against (domain.validate_asset):
the handlers run them again on the measured media.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from approval.domain import DomainError
from shared.events import MediaRef


@dataclass(frozen=True)
class ProbedMedia:
    kind: Literal["image", "video"]
    mime_type: str | None = None  # from the file's contents, not the server's header
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    size_bytes: int | None = None  # the whole file, from the response headers


class MediaProbeError(Exception):
    """The media at `url` could not be measured; `rule` names the violation."""

    rule = "media_unreadable"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class MediaUnreachable(MediaProbeError):
    rule = "media_unreachable"


class MediaUnreadable(MediaProbeError):
    rule = "media_unreadable"


class ProbeUnavailable(DomainError):
    """Our side cannot probe (ffprobe missing): not the content's fault."""

    code = "media_probe_unavailable"
    status = 503


DURATION_TOLERANCE_SECONDS = 0.5


def claim_mismatches(claimed: MediaRef, probed: ProbedMedia) -> list[tuple[str, str]]:
    """(rule, message) for each thing the metadata claims that the file contradicts."""
    problems: list[tuple[str, str]] = []
    if claimed.type != probed.kind:
        problems.append(("media_type", f"is declared {claimed.type} but is a {probed.kind}"))
    for name, said, found in (
        ("width", claimed.width, probed.width),
        ("height", claimed.height, probed.height),
        ("size_bytes", claimed.size_bytes, probed.size_bytes),
    ):
        if said is not None and found is not None and said != found:
            problems.append(("media_mismatch", f"declares {name} {said} but the file has {found}"))
    said_s, found_s = claimed.duration_seconds, probed.duration_seconds
    if said_s is not None and found_s is not None and abs(said_s - found_s) > DURATION_TOLERANCE_SECONDS:
        problems.append(("media_mismatch", f"declares {said_s:g} s but the file lasts {found_s:.1f} s"))
    return problems


def measured(claimed: MediaRef, probed: ProbedMedia) -> MediaRef:
    """The media reference with what the file really is, so limits are checked on facts and the
    publisher receives them."""
    update = {
        "mime_type": probed.mime_type,
        "width": probed.width,
        "height": probed.height,
        "duration_seconds": probed.duration_seconds,
        "size_bytes": probed.size_bytes,
    }
    return claimed.model_copy(update={k: v for k, v in update.items() if v is not None})
