"""The demo batch: content for every format each platform offers (PLATFORMS.md), some published
at once and some scheduled a few seconds ahead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tools.demo.api import JSON
from tools.demo.media import DemoMedia

VIDEO = "video"  # a media name meaning the demo video; the others are image files


@dataclass(frozen=True)
class Piece:
    caption: str
    media: tuple[str, ...]
    targets: tuple[tuple[str, str], ...]  # (platform, format)
    after_s: float | None = None  # None: publish now; else scheduled this long after the batch starts

    @property
    def needs_video(self) -> bool:
        return VIDEO in self.media


TEXT = ("x", "linkedin", "threads", "facebook", "telegram")
PIECES = (
    Piece("We are live: say hello to our new studio", (), tuple((p, "post") for p in TEXT)),
    Piece("Five things we learned shipping every day", (), (("x", "post"), ("threads", "post")), 5),
    Piece("Hiring: two designers who love motion", (), (("linkedin", "post"),), 10),
    Piece("Office hours today at 4 pm, bring questions", (), (("telegram", "post"), ("facebook", "post")), 8),
    Piece(
        "Colour of the week",
        ("square.jpg",),
        (("facebook", "post"), ("x", "post"), ("pinterest", "post"), ("linkedin", "post"), ("telegram", "post")),
    ),
    Piece("Sunset palette for your next project", ("sunset.jpg",), (("pinterest", "post"),), 6),
    Piece(
        "Our spring collection in three frames",
        ("square.jpg", "portrait.jpg", "sunset.jpg"),
        (
            ("instagram", "carousel"),
            ("facebook", "carousel"),
            ("x", "carousel"),
            ("pinterest", "carousel"),
            ("threads", "carousel"),
            ("telegram", "carousel"),
            ("tiktok", "carousel"),
        ),
    ),
    Piece("Before and after", ("square.jpg", "sunset.jpg"), (("x", "carousel"), ("telegram", "carousel")), 12),
    Piece("Today at the studio", ("portrait.jpg",), (("instagram", "story"), ("facebook", "story"))),
    Piece("Sneak peek", (VIDEO,), (("instagram", "story"), ("facebook", "story")), 10),
    Piece(
        "Behind the scenes #bts",
        (VIDEO,),
        (("instagram", "reel"), ("tiktok", "reel"), ("youtube", "reel"), ("facebook", "reel"), ("threads", "reel")),
    ),
    Piece(
        "The making of our studio, in one minute",
        (VIDEO,),
        (("youtube", "video"), ("tiktok", "video"), ("x", "video"), ("facebook", "video"), ("linkedin", "video")),
        15,
    ),
    Piece("Tip 1: write the hook first", (), (("x", "post"),), 3),
    Piece("Tip 2: one idea per post", (), (("threads", "post"),), 4),
    Piece("Tip 3: post when your audience is awake", (), (("linkedin", "post"),), 6),
    Piece("Tip 4: reuse your best ideas in new formats", (), (("facebook", "post"),), 9),
    Piece("Tip 5: end with a question", (), (("telegram", "post"),), 11),
    Piece("Mood board: warm tones", ("square.jpg",), (("pinterest", "post"),), 14),
    Piece("New workshop dates are out", ("square.jpg",), (("facebook", "post"), ("linkedin", "post"))),
    Piece("Meet the team: Ana, our motion lead", ("portrait.jpg",), (("instagram", "story"),), 7),
    Piece("Quick cut: 6 seconds of colour", (VIDEO,), (("tiktok", "video"), ("youtube", "reel")), 13),
    Piece("Thank you for 10k followers!", (), (("x", "post"), ("threads", "post"), ("telegram", "post")), 2),
    Piece("Weekend reading list", (), (("linkedin", "post"), ("facebook", "post")), 16),
    Piece("Studio playlist, volume 3", ("sunset.jpg",), (("telegram", "post"), ("x", "post")), 18),
)


def asset_bodies(accounts: dict[str, str], media: DemoMedia, start: datetime, run: str) -> list[JSON]:
    """`POST /v1/assets` bodies for this run; `run` keeps captions unique (platforms refuse duplicates)."""
    bodies: list[JSON] = []
    for number, piece in enumerate(PIECES, 1):
        if piece.needs_video and not media.has_video:
            continue
        targets = [
            {
                "target_id": f"{platform}-{fmt}",
                "account_id": accounts[platform],
                "format": fmt,
                "options": {"title": piece.caption[:100]} if platform == "youtube" else {},
            }
            for platform, fmt in piece.targets
        ]
        schedule: JSON = (
            {"publish_now": True}
            if piece.after_s is None
            else {"at_utc": (start + timedelta(seconds=piece.after_s)).isoformat().replace("+00:00", "Z")}
        )
        bodies.append(
            {
                "caption": f"{piece.caption} (demo {run}.{number})",
                "media": [media.video() if name == VIDEO else media.image(name) for name in piece.media],
                "targets": targets,
                "schedule": schedule,
                "campaign": f"demo-{run}",
                "source": "make demo",
            }
        )
    return bodies
