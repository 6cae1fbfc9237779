"""Crash tests: the publisher is SIGKILLed after the platform accepted the post and before the
outcome was recorded (the emulator holds the answer of the accepting call). The restarted
publisher gets the post again, takes the attempt over once its lease expires, and reconciles:
exactly one live post, or `publish_unconfirmed` where the platform gives no way to check."""

from __future__ import annotations

from uuid import uuid4

import pytest

from shared.events import ErrorCode, MediaRef, Platform, PostFailed, PostFormat, PostPublished, PostRetryScheduled
from tests.publisher.harness import Stack
from tests.publisher.support import due
from tests.support import until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


CASES = [
    # platform, format, media kind, profile, the outcome after the restart
    (Platform.INSTAGRAM, PostFormat.POST, "image", {}, "published"),  # saved container: status PUBLISHED
    (Platform.YOUTUBE, PostFormat.VIDEO, "video", {}, "published"),  # saved upload session: probe
    (Platform.X, PostFormat.POST, None, {}, "published"),  # timeline, then a duplicate refusal
    (Platform.TIKTOK, PostFormat.VIDEO, "video", {}, "unconfirmed"),  # the publish_id was in the lost answer
    (Platform.TELEGRAM, PostFormat.POST, None, {"chat_id": "@news"}, "unconfirmed"),  # no way to check
    (Platform.FACEBOOK, PostFormat.POST, None, {}, "published"),  # the page's published_posts
    (Platform.LINKEDIN, PostFormat.POST, None, {}, "published"),  # the author's posts
    (Platform.THREADS, PostFormat.POST, None, {}, "published"),  # saved container: status PUBLISHED
    (Platform.PINTEREST, PostFormat.POST, "image", {"board_id": "b1"}, "published"),  # the board's pins
]


@pytest.mark.parametrize(("platform", "fmt", "kind", "profile", "expected"), CASES, ids=[c[0].value for c in CASES])
async def test_killed_after_the_platform_accepted_never_posts_twice(
    stack: Stack, platform: Platform, fmt: PostFormat, kind: str | None, profile: dict[str, str], expected: str
) -> None:
    account_id, info = await stack.connect(platform, **profile)
    media = [MediaRef(url=f"{stack.emulator.url}/_emulator/health", type=kind)] if kind else []  # type: ignore[arg-type]
    job = due(platform, fmt=fmt, media=media, caption=f"crash {uuid4().hex[:6]}", account_id=account_id,
              post_id=f"crash-{uuid4().hex}")  # fmt: skip
    first = await stack.start_publisher(platform.value)
    # The accepting call creates the post, then its answer is held far beyond the kill.
    await stack.emulator.client.add_fault(
        "lost_response", platform=platform.value, account_id=info.account_id, count=1, hold_ms=120_000
    )
    await stack.send(job)

    async def accepted() -> bool:
        return await stack.live_posts(platform, info) == 1

    await until(accepted, within=60, what="the platform accepting the post")
    first.kill()
    assert stack.watch.events(PostPublished, post_id=job.post_id) == []

    second = await stack.start_publisher(platform.value)
    try:
        if expected == "published":
            (published,) = await stack.watch.wait_for(PostPublished, post_id=job.post_id, within=90)
            (post,) = await stack.emulator.client.posts(platform.value, info.account_id)
            assert published.remote_id in (post.remote_id, str(post.remote_id))
        else:
            (failed,) = await stack.watch.wait_for(PostFailed, post_id=job.post_id, within=90)
            assert failed.error_code is ErrorCode.PUBLISH_UNCONFIRMED
            assert "a person has to check" in failed.error_message
        assert stack.watch.events(PostRetryScheduled, post_id=job.post_id) == []  # never retried automatically
        assert await stack.live_posts(platform, info) == 1
        stats = await stack.emulator.client.stats()
        assert stats.duplicates == 0
    finally:
        assert second.terminate() == 0, second.log_tail()
