"""The publisher as a real process (`--platform all`) on the real Kafka broker and FerretDB,
against the emulator as a real process: every platform's happy path, rate-limit deferral, retry
exhaustion, and posts held on a dead token or a read-only grant and resumed after a reconnect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio

from shared.events import (
    AccountStatus,
    AccountStatusChanged,
    ErrorCode,
    Platform,
    PostFailed,
    PostFormat,
    PostHeld,
    PostPublished,
    PostRetryScheduled,
    utc_now,
)
from shared.settings import KafkaSettings, MongoSettings
from tests.publisher.harness import Stack, running_stack
from tests.publisher.support import IMAGE, IMAGE2, VIDEO, due

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

HAPPY: dict[Platform, dict[str, Any]] = {
    Platform.INSTAGRAM: {"fmt": PostFormat.CAROUSEL, "media": [IMAGE, IMAGE2]},
    Platform.FACEBOOK: {"fmt": PostFormat.POST, "media": [IMAGE]},
    Platform.X: {"fmt": PostFormat.POST},
    Platform.TIKTOK: {"fmt": PostFormat.VIDEO, "media": [VIDEO]},
    Platform.YOUTUBE: {"fmt": PostFormat.VIDEO, "media": [VIDEO]},
    Platform.LINKEDIN: {"fmt": PostFormat.POST},
    Platform.THREADS: {"fmt": PostFormat.POST},
    Platform.PINTEREST: {"fmt": PostFormat.POST, "media": [IMAGE], "profile": {"board_id": "b1"}},
    Platform.TELEGRAM: {"fmt": PostFormat.POST, "profile": {"chat_id": "@news"}},
}
# Formats with their own multi-step flows (uploads, processing) beyond each platform's happy path.
MORE_FORMATS: list[tuple[Platform, dict[str, Any]]] = [
    (Platform.FACEBOOK, {"fmt": PostFormat.STORY, "media": [IMAGE]}),
    (Platform.FACEBOOK, {"fmt": PostFormat.STORY, "media": [VIDEO]}),
    (Platform.LINKEDIN, {"fmt": PostFormat.POST, "media": [IMAGE]}),
    (Platform.LINKEDIN, {"fmt": PostFormat.VIDEO, "media": [VIDEO]}),
    (Platform.PINTEREST, {"fmt": PostFormat.VIDEO, "media": [VIDEO, IMAGE], "profile": {"board_id": "b1"}}),
]
CASES = [*HAPPY.items(), *MORE_FORMATS]
CASE_IDS = [f"{p.value}-{s['fmt'].value}-{'+'.join(m.type for m in s.get('media', [])) or 'text'}" for p, s in CASES]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    kafka_settings: KafkaSettings, mongo_settings: MongoSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running_stack(kafka_settings, mongo_settings, tmp_path_factory.mktemp("publisher")) as stack:
        process = await stack.start_publisher("all")
        try:
            yield stack
        finally:
            assert process.terminate() == 0, process.log_tail()


@pytest.mark.parametrize(("platform", "spec"), CASES, ids=CASE_IDS)
async def test_every_platform_publishes_once(stack: Stack, platform: Platform, spec: dict[str, Any]) -> None:
    account_id, info = await stack.connect(platform, **spec.get("profile", {}))
    # Media the publisher downloads itself (X, YouTube, LinkedIn, Pinterest) must exist: the emulator serves the bytes.
    media = [m.model_copy(update={"url": f"{stack.emulator.url}/_emulator/health"}) for m in spec.get("media", [])]
    job = due(
        platform, fmt=spec["fmt"], media=media, caption=f"happy {uuid4().hex[:6]}",
        account_id=account_id, post_id=f"post-{uuid4().hex[:10]}",
    )  # fmt: skip
    await stack.send(job)
    (published,) = await stack.watch.wait_for(PostPublished, post_id=job.post_id, within=60)
    assert published.attempt == 1
    assert published.remote_id
    assert published.published_at <= utc_now()
    assert await stack.live_posts(platform, info) == 1


async def test_a_spent_quota_defers_to_the_reset(stack: Stack) -> None:
    account_id, info = await stack.connect(Platform.INSTAGRAM)
    await stack.emulator.client.set_limits("instagram", info.account_id, publish_limit=1, publish_window_s=3600)
    first = due(Platform.INSTAGRAM, media=[IMAGE], caption="one", account_id=account_id, post_id=f"q1-{uuid4().hex}")
    second = due(Platform.INSTAGRAM, media=[IMAGE], caption="two", account_id=account_id, post_id=f"q2-{uuid4().hex}")
    await stack.send(first)
    await stack.send(second)
    await stack.watch.wait_for(PostPublished, post_id=first.post_id, within=60)
    (deferred,) = await stack.watch.wait_for(PostRetryScheduled, post_id=second.post_id, within=60)
    assert deferred.error_code is ErrorCode.RATE_LIMITED
    assert deferred.next_attempt == 2
    assert deferred.next_attempt_at > utc_now()
    assert await stack.live_posts(Platform.INSTAGRAM, info) == 1


async def test_retryable_failures_end_in_a_failure_after_five_attempts(stack: Stack) -> None:
    account_id, info = await stack.connect(Platform.PINTEREST, board_id="b1")
    await stack.emulator.client.add_fault("server_error", platform="pinterest", account_id=info.account_id, status=503)
    post_id = f"r-{uuid4().hex}"
    for attempt in range(1, 6):
        job = due(Platform.PINTEREST, media=[IMAGE], account_id=account_id, post_id=post_id, attempt=attempt)
        await stack.send(job)
        if attempt < 5:
            await stack.watch.wait_for(PostRetryScheduled, post_id=post_id, attempt=attempt, within=60)
    (failed,) = await stack.watch.wait_for(PostFailed, post_id=post_id, within=60)
    assert (failed.error_code, failed.attempts) == (ErrorCode.NETWORK_ERROR, 5)
    retries = stack.watch.events(PostRetryScheduled, post_id=post_id)
    assert [r.error_code for r in retries] == [ErrorCode.NETWORK_ERROR] * 4
    assert await stack.live_posts(Platform.PINTEREST, info) == 0


async def test_a_dead_token_holds_the_post_until_the_account_is_reconnected(stack: Stack) -> None:
    account_id, info = await stack.connect(Platform.X)
    await stack.emulator.client.expire_token("x", info.account_id, "both")
    post_id = f"h-{uuid4().hex}"
    await stack.send(due(Platform.X, caption="held", account_id=account_id, post_id=post_id))
    (held,) = await stack.watch.wait_for(PostHeld, post_id=post_id, within=60)
    assert held.error_code is ErrorCode.TOKEN_EXPIRED
    (status,) = await stack.watch.wait_for(AccountStatusChanged, account_id=account_id, within=30)
    assert status.status is AccountStatus.TOKEN_EXPIRED
    # The user reconnects (approval stores fresh tokens); the scheduler then sends the next attempt.
    await stack.save(account_id, Platform.X, await stack.emulator.client.reconnect("x", info.account_id))
    await stack.send(due(Platform.X, caption="held", account_id=account_id, post_id=post_id, attempt=2))
    (published,) = await stack.watch.wait_for(PostPublished, post_id=post_id, within=60)
    assert published.attempt == 2
    assert await stack.live_posts(Platform.X, info) == 1


async def test_a_read_only_account_holds_the_post_naming_the_scope_until_reconnected(stack: Stack) -> None:
    account_id, info = await stack.connect(Platform.X, scopes=["tweet.read", "users.read"])
    post_id = f"s-{uuid4().hex}"
    await stack.send(due(Platform.X, caption="read only", account_id=account_id, post_id=post_id))
    (held,) = await stack.watch.wait_for(PostHeld, post_id=post_id, within=60)
    assert held.error_code is ErrorCode.ACCOUNT_INACTIVE
    assert held.reason == "reconnect with publishing permission: missing scope tweet.write"
    assert await stack.live_posts(Platform.X, info) == 0
    # Approval stores the new grant on reconnect; the scheduler then sends the released attempt.
    await stack.save(account_id, Platform.X, info, scopes=["tweet.read", "tweet.write"])
    await stack.send(due(Platform.X, caption="read only", account_id=account_id, post_id=post_id, attempt=2))
    (published,) = await stack.watch.wait_for(PostPublished, post_id=post_id, within=60)
    assert published.attempt == 2
    assert await stack.live_posts(Platform.X, info) == 1
