"""The publish use case with in-memory adapters and the emulator in-process: the ledger rules,
retries, rate limits, holds and credentials, asserted on emitted events and on the emulator's
record of live posts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from publisher.domain import Limit, RetryPolicy, scope_problem
from publisher.handlers import AccountHeld, Credentials, Publisher, PublisherConfig, RateLimits
from publisher.instruments import build_publisher_metrics
from publisher.platforms import build_client
from publisher.platforms.base import PlatformClient, Polling
from publisher.platforms.instagram import Instagram
from publisher.ports import AttemptStalled
from publisher.settings import PlatformSettings
from shared.credentials import OAuthTokens, StoredCredentials
from shared.events import (
    AccountStatus,
    AccountStatusChanged,
    AccountVerifyRequested,
    ErrorCode,
    Platform,
    PostFailed,
    PostFormat,
    PostHeld,
    PostPublished,
    PostRetryScheduled,
)
from tests.publisher.fakes import FakeClock, ListSink, MemoryLedger, MemoryRateStore, MemoryVault, _Attempt
from tests.publisher.support import IMAGE, VIDEO, LossyASGITransport, due, fake_media
from tools.emulator import EmulatorConfig, create_app
from tools.emulator.client import AccountInfo, EmulatorClient


@dataclass
class World:
    publisher: Publisher
    emu: EmulatorClient
    vault: MemoryVault
    ledger: MemoryLedger
    sink: ListSink
    clock: FakeClock
    clients: dict[Platform, PlatformClient]

    async def connect(
        self, platform: Platform, account_id: str = "acct-1", *, scopes: Sequence[str] = (), **profile: str
    ) -> AccountInfo:
        info = await self.emu.create_account(platform.value)
        self.save(platform, info, account_id, scopes=scopes, profile=profile)
        return info

    def save(
        self,
        platform: Platform,
        info: AccountInfo,
        account_id: str = "acct-1",
        *,
        scopes: Sequence[str] = (),
        profile: Mapping[str, str] | None = None,
    ) -> None:
        """Tokens as approval stores them on a connect or reconnect, with the granted scopes."""
        refresh = SecretStr(info.refresh_token) if info.refresh_token else None
        tokens = OAuthTokens(access_token=SecretStr(info.access_token), refresh_token=refresh, scopes=list(scopes))
        self.vault.put(account_id, platform.value, tokens, external_id=info.account_id, profile=dict(profile or {}))

    async def live_posts(self, platform: Platform, info: AccountInfo) -> int:
        return len(await self.emu.posts(platform.value, info.account_id))


LIMITS = {Platform.X: Limit(2, timedelta(hours=1))}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    app = create_app(EmulatorConfig(processing_delay_ms=0, seed=1, realistic_limits=False))
    async with (
        httpx.AsyncClient(transport=LossyASGITransport(app=app)) as http,
        EmulatorClient("http://emu", transport=httpx.ASGITransport(app=app)) as emu,
    ):
        clients = {
            p: build_client(
                p, http, PlatformSettings(), base_url=f"http://emu/{p.value}", fetch_media=fake_media,
                polling=Polling(every=0.01, timeout=5),
            )
            for p in Platform
        }  # fmt: skip
        vault, ledger, sink, clock = MemoryVault(), MemoryLedger(), ListSink(), FakeClock()
        publisher = Publisher(
            clients=clients,
            ledger=ledger,
            credentials=Credentials(vault, clock, clients, refresh_margins={}, cache_seconds=0),
            limits=RateLimits(MemoryRateStore(), clock, limits=LIMITS, app_limits={}),
            sink=sink,
            clock=clock,
            metrics=build_publisher_metrics(),
            config=PublisherConfig(owner="me", policy=RetryPolicy(max_attempts=5)),
            rand=lambda: 0.5,
        )
        yield World(publisher, emu, vault, ledger, sink, clock, clients)


async def test_publishes_and_reports_remote_id_permalink_and_attempt(world: World) -> None:
    info = await world.connect(Platform.INSTAGRAM)
    job = due(Platform.INSTAGRAM, media=[IMAGE], caption="first light")
    await world.publisher.publish_due(job)
    (published,) = world.sink.of(PostPublished)
    (post,) = await world.emu.posts("instagram", info.account_id)
    assert (published.remote_id, published.permalink, published.attempt) == (post.remote_id, post.permalink, 1)
    assert published.post_id == job.post_id
    assert published.account_id == "acct-1"


async def test_a_redelivered_attempt_emits_the_same_events_and_calls_nothing(world: World) -> None:
    info = await world.connect(Platform.X)
    job = due(Platform.X, caption="once only")
    await world.publisher.publish_due(job)
    await world.publisher.publish_due(job)
    first, again = world.sink.of(PostPublished)
    assert first == again  # same event_id: consumers deduplicate
    assert await world.live_posts(Platform.X, info) == 1


async def test_a_post_published_on_an_earlier_attempt_is_never_published_again(world: World) -> None:
    info = await world.connect(Platform.LINKEDIN)
    await world.publisher.publish_due(due(Platform.LINKEDIN, caption="hello", attempt=1))
    await world.publisher.publish_due(due(Platform.LINKEDIN, caption="hello", attempt=2))
    first, second = world.sink.of(PostPublished)
    assert first.remote_id == second.remote_id
    assert await world.live_posts(Platform.LINKEDIN, info) == 1


async def test_an_unsupported_format_fails_before_any_call(world: World) -> None:
    info = await world.connect(Platform.LINKEDIN)
    await world.publisher.publish_due(due(Platform.LINKEDIN, fmt=PostFormat.STORY))
    (failed,) = world.sink.of(PostFailed)
    assert failed.error_code is ErrorCode.FORMAT_UNSUPPORTED
    assert "story" in failed.error_message
    assert await world.live_posts(Platform.LINKEDIN, info) == 0


async def test_a_caption_over_the_limits_is_rejected_with_the_reason(world: World) -> None:
    info = await world.connect(Platform.INSTAGRAM)
    caption = " ".join(f"#tag{i}" for i in range(31))
    await world.publisher.publish_due(due(Platform.INSTAGRAM, media=[IMAGE], caption=caption))
    (failed,) = world.sink.of(PostFailed)
    assert failed.error_code is ErrorCode.CONTENT_REJECTED
    assert "31 hashtags" in failed.error_message
    assert await world.live_posts(Platform.INSTAGRAM, info) == 0


async def test_retryable_errors_back_off_then_fail_after_five_attempts(world: World) -> None:
    info = await world.connect(Platform.PINTEREST, board_id="b1")
    await world.emu.add_fault("server_error", platform="pinterest", status=503)  # not taken: safe to retry
    for attempt in range(1, 6):
        await world.publisher.publish_due(due(Platform.PINTEREST, media=[IMAGE], attempt=attempt))
    retries = world.sink.of(PostRetryScheduled)
    assert [r.attempt for r in retries] == [1, 2, 3, 4]
    assert all(r.platform_error is not None and r.platform_error["status"] == 503 for r in retries)
    assert all(r.error_code is ErrorCode.NETWORK_ERROR and r.next_attempt == r.attempt + 1 for r in retries)
    delays = [(r.next_attempt_at - world.clock.now()).total_seconds() for r in retries]
    assert delays == [66.0, 132.0, 264.0, 528.0]  # 60 s doubling, plus half of the 20 % jitter
    (failed,) = world.sink.of(PostFailed)
    assert (failed.error_code, failed.attempts) == (ErrorCode.NETWORK_ERROR, 5)
    assert failed.platform_error is not None
    assert failed.platform_error["status"] == 503
    assert await world.live_posts(Platform.PINTEREST, info) == 0


async def test_a_spent_rate_window_defers_to_its_reset_and_never_sends_early(world: World) -> None:
    info = await world.connect(Platform.X)
    start = world.clock.now()
    for n in range(3):
        await world.publisher.publish_due(due(Platform.X, caption=f"post {n}", post_id=f"p{n}"))
    (deferred,) = world.sink.of(PostRetryScheduled)
    assert deferred.error_code is ErrorCode.RATE_LIMITED
    assert deferred.next_attempt_at == start + timedelta(hours=1)
    world.clock.advance(1800)  # still inside the window: deferred again, not sent
    await world.publisher.publish_due(due(Platform.X, caption="post 2", post_id="p2", attempt=2))
    assert len(world.sink.of(PostRetryScheduled)) == 2
    world.clock.advance(1801)
    await world.publisher.publish_due(due(Platform.X, caption="post 2", post_id="p2", attempt=3))
    assert await world.live_posts(Platform.X, info) == 3


async def test_the_live_quota_wins_over_the_local_count(world: World) -> None:
    info = await world.connect(Platform.INSTAGRAM)
    await world.emu.set_limits("instagram", info.account_id, publish_limit=0)
    await world.publisher.publish_due(due(Platform.INSTAGRAM, media=[IMAGE]))
    (deferred,) = world.sink.of(PostRetryScheduled)
    assert deferred.error_code is ErrorCode.RATE_LIMITED
    assert deferred.next_attempt_at > world.clock.now()
    assert await world.live_posts(Platform.INSTAGRAM, info) == 0


async def test_a_dead_token_holds_the_post_and_reports_the_account_once(world: World) -> None:
    info = await world.connect(Platform.INSTAGRAM)
    await world.emu.expire_token("instagram", info.account_id, "both")
    await world.publisher.publish_due(due(Platform.INSTAGRAM, media=[IMAGE], post_id="a"))
    await world.publisher.publish_due(due(Platform.INSTAGRAM, media=[IMAGE], post_id="b"))
    held = world.sink.of(PostHeld)
    assert [h.error_code for h in held] == [ErrorCode.TOKEN_EXPIRED, ErrorCode.TOKEN_EXPIRED]
    assert held[0].platform_error is not None  # what the platform said when the refresh was refused
    (status,) = world.sink.of(AccountStatusChanged)
    assert (status.status, status.previous_status) == (AccountStatus.TOKEN_EXPIRED, AccountStatus.ACTIVE)
    assert world.vault.records["acct-1"].status is AccountStatus.TOKEN_EXPIRED


async def test_the_platform_error_reaches_events_with_its_words_and_without_secrets(world: World) -> None:
    await world.connect(Platform.X)
    echoed = "over capacity; request had access_token=EAAsecret0123456 and Authorization: Bearer xyz.secret.789"
    await world.emu.add_fault("server_error", platform="x", count=1, message=echoed)
    await world.publisher.publish_due(due(Platform.X, caption="raw"))
    (retry,) = world.sink.of(PostRetryScheduled)
    assert retry.platform_error is not None
    assert retry.platform_error["status"] == 503
    assert "over capacity" in retry.error_message
    shown = retry.model_dump_json()
    assert "over capacity" in shown
    assert "EAAsecret0123456" not in shown
    assert "xyz.secret.789" not in shown


@pytest.mark.parametrize(
    ("platform", "granted", "missing"),
    [
        (Platform.X, ["tweet.read", "users.read"], "tweet.write"),
        (Platform.X, ["tweet.read", "tweet.write"], None),
        (Platform.LINKEDIN, ["r_liteprofile"], "w_member_social or w_organization_social"),
        (Platform.YOUTUBE, ["https://www.googleapis.com/auth/youtube.upload"], None),
        (Platform.TELEGRAM, ["anything"], None),
        (Platform.INSTAGRAM, [], None),  # not recorded (connected before scopes were kept): unknown, allowed
    ],
)
def test_publishing_needs_one_of_the_platforms_write_scopes(
    platform: Platform, granted: list[str], missing: str | None
) -> None:
    expected = None if missing is None else f"reconnect with publishing permission: missing scope {missing}"
    assert scope_problem(platform, granted) == expected


async def test_a_read_only_grant_holds_the_post_without_calling_the_platform_until_reconnected(world: World) -> None:
    info = await world.connect(Platform.X, scopes=["tweet.read", "users.read"])
    await world.publisher.publish_due(due(Platform.X, caption="read only"))
    (held,) = world.sink.of(PostHeld)
    assert held.error_code is ErrorCode.ACCOUNT_INACTIVE  # a hold that a reconnect releases
    assert held.reason == "reconnect with publishing permission: missing scope tweet.write"
    assert world.sink.of(PostFailed) == []
    assert (await world.emu.stats()).requests_by_platform.get("x", 0) == 0
    # The reconnect grants the write scope; the scheduler then releases the post as the next attempt.
    world.save(Platform.X, info, scopes=["tweet.read", "tweet.write"])
    await world.publisher.publish_due(due(Platform.X, caption="read only", attempt=2))
    (published,) = world.sink.of(PostPublished)
    assert published.attempt == 2
    assert await world.live_posts(Platform.X, info) == 1


async def test_a_cached_read_only_grant_is_read_again_before_holding(world: World) -> None:
    info = await world.connect(Platform.X, scopes=["tweet.read"])
    credentials = Credentials(world.vault, world.clock, world.clients, refresh_margins={}, cache_seconds=3600)
    with pytest.raises(AccountHeld):
        await credentials.session(Platform.X, "acct-1")
    world.save(Platform.X, info, scopes=["tweet.write"])  # reconnected while the grant was cached
    keyed = await credentials.session(Platform.X, "acct-1")
    assert keyed.session.access_token == info.access_token


class CountingVault(MemoryVault):
    def __init__(self, records: MemoryVault) -> None:
        super().__init__()
        self.records = records.records
        self.loads: list[str] = []
        self.batches: list[list[str]] = []

    async def load(self, account_id: str) -> StoredCredentials:
        self.loads.append(account_id)
        return await super().load(account_id)

    async def load_many(self, account_ids: Collection[str]) -> dict[str, StoredCredentials]:
        self.batches.append(sorted(account_ids))
        return await super().load_many(account_ids)


async def test_prefetched_credentials_spare_each_post_its_own_read_until_they_age(world: World) -> None:
    await world.connect(Platform.X, "acct-1")
    await world.connect(Platform.X, "acct-2")
    vault = CountingVault(world.vault)
    credentials = Credentials(vault, world.clock, world.clients, refresh_margins={}, cache_seconds=60)

    await credentials.prefetch(["acct-1", "acct-2", "never-connected"])
    await credentials.prefetch(["acct-1", "acct-2"])  # cached: nothing to read
    await credentials.session(Platform.X, "acct-1")
    await credentials.session(Platform.X, "acct-2")
    assert (vault.batches, vault.loads) == ([["acct-1", "acct-2", "never-connected"]], [])

    world.clock.advance(61)
    await credentials.prefetch(["acct-1"])
    assert vault.batches[1:] == [["acct-1"]]
    with pytest.raises(AccountHeld):  # the missing account is still refused by its own read
        await credentials.session(Platform.X, "never-connected")
    assert vault.loads == ["never-connected"]


async def test_a_401_refreshes_once_and_stores_the_rotated_refresh_token(world: World) -> None:
    info = await world.connect(Platform.X)
    await world.emu.expire_token("x", info.account_id)
    await world.publisher.publish_due(due(Platform.X, caption="after refresh"))
    assert len(world.sink.of(PostPublished)) == 1
    stored = world.vault.records["acct-1"]
    assert stored.version == 2
    assert stored.tokens.refresh_token is not None
    assert stored.tokens.refresh_token.get_secret_value() != info.refresh_token
    assert (
        stored.tokens.refresh_token.get_secret_value() == (await world.emu.account("x", info.account_id)).refresh_token
    )


async def test_tokens_near_expiry_are_refreshed_before_the_call(world: World) -> None:
    info = await world.connect(Platform.TIKTOK)
    stored = world.vault.records["acct-1"]
    world.vault.put(
        "acct-1", "tiktok", stored.tokens.model_copy(update={"expires_at": world.clock.now()}), external_id=None
    )
    await world.publisher.publish_due(
        due(Platform.TIKTOK, fmt=PostFormat.VIDEO, media=[IMAGE.model_copy(update={"type": "video"})])
    )
    assert len(world.sink.of(PostPublished)) == 1
    assert world.vault.records["acct-1"].external_id == info.account_id  # learned from the platform
    assert world.vault.records["acct-1"].tokens.access_token.get_secret_value() != info.access_token


async def test_a_taken_over_attempt_is_reconciled_from_its_saved_container(world: World) -> None:
    info = await world.connect(Platform.INSTAGRAM)
    job = due(Platform.INSTAGRAM, media=[IMAGE], caption="crashed mid-publish")
    # A worker that died after Instagram accepted the publish, before recording the outcome:
    client = world.clients[Platform.INSTAGRAM]
    assert isinstance(client, Instagram)
    session = (await world.publisher._credentials.session(Platform.INSTAGRAM, "acct-1")).session
    container = await client.create_container(job, session)
    world.ledger.attempts[(job.post_id, 1)] = _Attempt(
        "dead", world.clock.now() - timedelta(seconds=1), world.clock.now(), {"container_id": container}
    )
    await client.go_live(session, container)
    await world.publisher.publish_due(job)
    (published,) = world.sink.of(PostPublished)
    (post,) = await world.emu.posts("instagram", info.account_id)
    assert published.remote_id == post.remote_id


async def test_an_unfinished_container_is_published_by_whoever_takes_over(world: World) -> None:
    info = await world.connect(Platform.THREADS)
    job = due(Platform.THREADS, caption="died before publishing")
    client = world.clients[Platform.THREADS]
    session = (await world.publisher._credentials.session(Platform.THREADS, "acct-1")).session
    container = await client.create_container(job, session)  # type: ignore[attr-defined]
    world.ledger.attempts[(job.post_id, 1)] = _Attempt(
        "dead", world.clock.now() - timedelta(seconds=1), world.clock.now(), {"container_id": container}
    )
    await world.publisher.publish_due(job)
    assert len(world.sink.of(PostPublished)) == 1
    assert await world.live_posts(Platform.THREADS, info) == 1


async def test_an_attempt_nothing_can_check_is_unconfirmed_not_retried(world: World) -> None:
    info = await world.connect(Platform.TELEGRAM, chat_id="@news")
    job = due(Platform.TELEGRAM, caption="maybe sent")
    world.ledger.attempts[(job.post_id, 1)] = _Attempt(
        "dead", world.clock.now() - timedelta(seconds=1), world.clock.now()
    )
    await world.publisher.publish_due(job)
    (failed,) = world.sink.of(PostFailed)
    assert failed.error_code is ErrorCode.PUBLISH_UNCONFIRMED
    assert world.sink.of(PostRetryScheduled) == []
    assert await world.live_posts(Platform.TELEGRAM, info) == 0


async def test_a_lease_held_by_a_live_worker_is_waited_for(world: World) -> None:
    await world.connect(Platform.X)
    job = due(Platform.X, caption="busy")
    world.ledger.attempts[(job.post_id, 1)] = _Attempt(
        "other", world.clock.now() + timedelta(hours=1), world.clock.now()
    )
    task = asyncio.create_task(world.publisher.publish_due(job))
    await asyncio.sleep(0.3)
    assert not task.done()
    assert world.sink.events == []
    world.clock.advance(7200)  # the other worker died: its lease runs out
    await asyncio.wait_for(task, 10)
    assert len(world.sink.of(PostPublished)) == 1


async def test_a_hung_attempt_is_abandoned_and_reconciled_by_whoever_takes_it_over(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = await world.connect(Platform.THREADS)
    job = due(Platform.THREADS, caption="hung while processing", media=[VIDEO])  # a video waits for processing
    client = world.clients[Platform.THREADS]
    world.publisher._config = replace(world.publisher._config, attempt_timeout=timedelta(seconds=0.2))

    async def never_finishes(*_: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(client, "wait_finished", never_finishes)
    with pytest.raises(AttemptStalled):
        await world.publisher.publish_due(job)
    assert world.sink.events == []
    monkeypatch.undo()
    world.clock.advance(world.publisher._config.lease.total_seconds() + 1)  # our own lease runs out
    await world.publisher.publish_due(job)
    (published,) = world.sink.of(PostPublished)
    (post,) = await world.emu.posts("threads", info.account_id)
    assert published.remote_id == post.remote_id


async def test_the_lease_stops_being_renewed_when_the_attempt_ends_even_if_a_renewal_ignores_cancel(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyMongo's async API can swallow a cancellation that lands during an update; a renewal loop
    # stopped by cancelling it then renewed the lease for ever and the attempt never finished.
    info = await world.connect(Platform.X)
    job = due(Platform.X, caption="slow enough to renew")
    world.publisher._config = replace(world.publisher._config, lease=timedelta(seconds=0.3))
    renewals: list[float] = []
    real_renew = world.ledger.renew

    async def renew_ignoring_cancel(*args: object, **kwargs: object) -> bool:
        # Renewals every 0.1 s take 0.2 s: one is in flight when the attempt ends. A cancel is
        # swallowed, as PyMongo does now and then.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.2)
        renewals.append(asyncio.get_running_loop().time())
        return await real_renew(*args, **kwargs)  # type: ignore[arg-type]

    client = world.clients[Platform.X]
    real_publish = client.publish

    async def slow_publish(*args: object) -> object:
        await asyncio.sleep(0.5)
        return await real_publish(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(world.ledger, "renew", renew_ignoring_cancel)
    monkeypatch.setattr(client, "publish", slow_publish)
    task = asyncio.create_task(world.publisher.publish_due(job))
    done, _ = await asyncio.wait({task}, timeout=3)  # not wait_for: its cancel would unstick it
    assert task in done
    assert len(world.sink.of(PostPublished)) == 1
    assert renewals  # the lease was renewed while the attempt ran
    settled = len(renewals)
    await asyncio.sleep(0.5)
    assert len(renewals) <= settled + 1  # at most the renewal in flight finishes; then it stops
    assert await world.live_posts(Platform.X, info) == 1


async def test_verify_reports_a_dead_token_and_a_reconnect(world: World) -> None:
    info = await world.connect(Platform.X)
    verify = AccountVerifyRequested(producer="t", workspace_id="ws", correlation_id="acct-1", account_id="acct-1",
                                    platform=Platform.X)  # fmt: skip
    await world.emu.expire_token("x", info.account_id, "both")
    await world.publisher.verify_account(verify)
    (dead,) = world.sink.of(AccountStatusChanged)
    assert dead.status is AccountStatus.TOKEN_EXPIRED
    fresh = await world.emu.reconnect("x", info.account_id)
    stored = world.vault.records["acct-1"]
    world.vault.put(
        "acct-1", "x", OAuthTokens(access_token=SecretStr(fresh.access_token)), external_id=info.account_id,
        status=AccountStatus.TOKEN_EXPIRED,
    )  # fmt: skip
    assert stored.status is AccountStatus.TOKEN_EXPIRED
    await world.publisher.verify_account(verify)
    assert [e.status for e in world.sink.of(AccountStatusChanged)] == [
        AccountStatus.TOKEN_EXPIRED,
        AccountStatus.ACTIVE,
    ]


async def test_a_retry_after_the_post_was_initiated_continues_it_instead_of_posting_again(world: World) -> None:
    """TikTok's init puts the post on its way: when the status polls give up (processing is slow),
    the next attempt polls the same publish_id rather than initiating a second post."""
    info = await world.connect(Platform.TIKTOK)
    world.clients[Platform.TIKTOK] = build_client(
        Platform.TIKTOK, world.clients[Platform.TIKTOK].http.client, PlatformSettings(),  # type: ignore[attr-defined]
        base_url="http://emu/tiktok", fetch_media=fake_media, polling=Polling(every=0.01, timeout=0.2),
    )  # fmt: skip
    await world.emu.set_processing(800, platform="tiktok")
    video = IMAGE.model_copy(update={"type": "video"})
    await world.publisher.publish_due(due(Platform.TIKTOK, fmt=PostFormat.VIDEO, media=[video], attempt=1))
    (retry,) = world.sink.of(PostRetryScheduled)
    assert retry.error_code is ErrorCode.NETWORK_ERROR
    await asyncio.sleep(1.0)  # processing finishes meanwhile
    await world.publisher.publish_due(due(Platform.TIKTOK, fmt=PostFormat.VIDEO, media=[video], attempt=2))
    (published,) = world.sink.of(PostPublished)
    assert published.attempt == 2
    assert await world.live_posts(Platform.TIKTOK, info) == 1


async def test_a_person_retrying_a_failed_post_starts_over(world: World) -> None:
    info = await world.connect(Platform.TIKTOK)
    video = IMAGE.model_copy(update={"type": "video"})
    await world.emu.set_processing(0, platform="tiktok", outcome="error")
    await world.publisher.publish_due(due(Platform.TIKTOK, fmt=PostFormat.VIDEO, media=[video], attempt=1))
    (failed,) = world.sink.of(PostFailed)
    assert failed.error_code is ErrorCode.CONTENT_REJECTED
    await world.emu.set_processing(0, platform="tiktok")
    await world.publisher.publish_due(due(Platform.TIKTOK, fmt=PostFormat.VIDEO, media=[video], attempt=2))
    assert [p.attempt for p in world.sink.of(PostPublished)] == [2]  # a new init, not the failed publish_id
    statuses = sorted(p.status for p in await world.emu.posts("tiktok", info.account_id))
    assert statuses == ["failed", "live"]
