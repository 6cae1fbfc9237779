"""Contract tests: every platform module against the emulator in-process (no sockets).

One scenario class, one small subclass per platform: success, each error class, token refresh
(and rotation where the platform rotates), and a lost response reconciled without a second post."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar
from uuid import uuid4

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from publisher.platforms import build_client
from publisher.platforms.base import (
    AmbiguousPublish,
    NotLive,
    PlatformClient,
    PlatformError,
    Polling,
    Published,
    Session,
)
from publisher.settings import PlatformSettings
from shared.credentials import OAuthTokens
from shared.events import ErrorCode, MediaRef, Platform, PostDue, PostFormat
from tests.publisher.support import IMAGE, VIDEO, LossyASGITransport, MemoryCheckpoint, due, fake_media
from tools.emulator import EmulatorConfig, create_app
from tools.emulator.client import AccountInfo, EmulatorClient


class PlatformContract:
    platform: ClassVar[Platform]
    fmt: ClassVar[PostFormat] = PostFormat.POST
    media: ClassVar[list[MediaRef]] = []
    profile: ClassVar[dict[str, Any]] = {}
    spam_code: ClassVar[ErrorCode] = ErrorCode.CONTENT_REJECTED
    refreshes: ClassVar[bool] = True  # has refresh tokens
    rotates: ClassVar[bool] = False  # refresh tokens are single use
    extends: ClassVar[bool] = False  # a valid long-lived token buys a new one (Meta)
    reconcilable_after_loss: ClassVar[bool] = True

    @pytest.fixture
    def app(self) -> Starlette:
        return create_app(EmulatorConfig(processing_delay_ms=0, seed=3, realistic_limits=False))

    @pytest.fixture
    async def http(self, app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(transport=LossyASGITransport(app=app)) as client:
            yield client

    @pytest.fixture
    async def emu(self, app: Starlette) -> AsyncIterator[EmulatorClient]:
        async with EmulatorClient("http://emu", transport=httpx.ASGITransport(app=app)) as client:
            yield client

    @pytest.fixture
    def client(self, http: httpx.AsyncClient) -> PlatformClient:
        return build_client(
            self.platform,
            http,
            PlatformSettings(),
            base_url=f"http://emu/{self.platform.value}",
            fetch_media=fake_media,
            polling=Polling(every=0.01, timeout=5),
        )

    @pytest.fixture
    async def account(self, emu: EmulatorClient) -> AccountInfo:
        return await emu.create_account(self.platform.value)

    def session(self, account: AccountInfo) -> Session:
        return Session("acct-1", account.account_id, account.access_token, self.profile, account.username)

    def job(self, caption: str | None = None) -> PostDue:
        return due(self.platform, fmt=self.fmt, caption=caption or f"contract {uuid4().hex[:8]}", media=self.media)

    def tokens(self, account: AccountInfo) -> OAuthTokens:
        refresh = SecretStr(account.refresh_token) if account.refresh_token else None
        return OAuthTokens(access_token=SecretStr(account.access_token), refresh_token=refresh)

    async def refused(self, client: PlatformClient, account: AccountInfo) -> PlatformError:
        with pytest.raises(PlatformError) as caught:
            await client.publish(self.job(), self.session(account), MemoryCheckpoint())
        return caught.value

    # ----- scenarios -------------------------------------------------------------------------

    async def test_publishes_one_live_post(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        job = self.job()
        published = await client.publish(job, self.session(account), MemoryCheckpoint())
        posts = await emu.posts(self.platform.value, account.account_id)
        assert len(posts) == 1
        assert published.remote_id
        assert self.platform is Platform.TIKTOK or published.remote_id == posts[0].remote_id
        assert client.content_problem(job, self.profile) is None

    async def test_whoami_names_the_platform_account(self, client: PlatformClient, account: AccountInfo) -> None:
        identity = await client.whoami(account.access_token, self.profile)
        assert identity.external_id == account.account_id

    async def test_an_expired_token_is_token_expired(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        await emu.expire_token(self.platform.value, account.account_id)
        assert (await self.refused(client, account)).code is ErrorCode.TOKEN_EXPIRED

    @pytest.mark.parametrize(
        ("fault", "status", "expected"),
        [
            ("rate_limit", None, ErrorCode.RATE_LIMITED),
            ("server_error", 503, ErrorCode.NETWORK_ERROR),  # unavailable: the request was not taken
            ("content_rejected", None, ErrorCode.CONTENT_REJECTED),
        ],
    )
    async def test_refusals_map_to_error_codes_and_keep_the_platform_words(
        self,
        client: PlatformClient,
        emu: EmulatorClient,
        account: AccountInfo,
        fault: str,
        status: int | None,
        expected: ErrorCode,
    ) -> None:
        await emu.add_fault(fault, platform=self.platform.value, message="the platform's own words", status=status)
        error = await self.refused(client, account)
        assert error.code is expected
        if fault == "content_rejected":
            assert "the platform's own words" in error.message
        assert error.detail  # the raw platform error is kept
        assert await emu.posts(self.platform.value, account.account_id) == []

    async def test_a_server_error_on_the_call_that_goes_live_is_ambiguous_and_never_doubles(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        """A 500 may come after the platform stored the post; here it came before (nothing live)."""
        job, session, checkpoint = self.job(), self.session(account), MemoryCheckpoint()
        await emu.add_fault("server_error", platform=self.platform.value, count=1, status=500)
        with pytest.raises(AmbiguousPublish):
            await client.publish(job, session, checkpoint)
        assert await emu.posts(self.platform.value, account.account_id) == []
        await self.reconcile_to_at_most_one_post(client, emu, account, job, checkpoint)

    async def test_a_gateway_error_after_success_reconciles_to_the_one_post(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        job, session, checkpoint = self.job(), self.session(account), MemoryCheckpoint()
        await emu.add_fault("lost_response", platform=self.platform.value, count=1, hold_ms=0, status=502)
        with pytest.raises(AmbiguousPublish):
            await client.publish(job, session, checkpoint)
        (live,) = await emu.posts(self.platform.value, account.account_id)
        found = await self.reconcile_to_at_most_one_post(client, emu, account, job, checkpoint)
        assert found is None or found.remote_id == live.remote_id

    async def reconcile_to_at_most_one_post(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo, job: PostDue, checkpoint: Any
    ) -> Published | None:
        """Reconciliation finds the post, finishes it once, says it never went live, or asks a person."""
        found: Published | None = None
        unsure: ErrorCode | None = None
        try:
            found = await client.reconcile(job, self.session(account), checkpoint, job.due_at)
        except NotLive:
            pass
        except PlatformError as exc:
            unsure = exc.code
        assert unsure in (None, ErrorCode.PUBLISH_UNCONFIRMED)
        posts = await emu.posts(self.platform.value, account.account_id)
        assert len(posts) <= 1
        if found is not None:
            assert self.platform is Platform.TIKTOK or [p.remote_id for p in posts] == [found.remote_id]
        return found

    async def test_a_spam_restriction_is_final(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        await emu.add_fault("spam", platform=self.platform.value)
        assert (await self.refused(client, account)).code is self.spam_code

    async def test_refresh_gives_working_tokens(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        if not (self.refreshes or self.extends):
            with pytest.raises(PlatformError) as caught:
                await client.refresh(self.tokens(account))
            assert caught.value.code is ErrorCode.TOKEN_EXPIRED
            return
        await emu.expire_token(self.platform.value, account.account_id) if self.refreshes else None
        fresh = await client.refresh(self.tokens(account))
        assert fresh.access_token.get_secret_value() != account.access_token
        assert fresh.expires_at is None or fresh.expires_at.tzinfo is not None
        identity = await client.whoami(fresh.access_token.get_secret_value(), self.profile)
        assert identity.external_id == account.account_id
        if self.rotates:
            assert fresh.refresh_token is not None
            assert fresh.refresh_token.get_secret_value() != account.refresh_token
            with pytest.raises(PlatformError) as caught:  # single use: the old one is dead now
                await client.refresh(self.tokens(account))
            assert caught.value.code is ErrorCode.TOKEN_EXPIRED

    @pytest.mark.parametrize(
        ("fault", "expected"), [("rate_limit", ErrorCode.RATE_LIMITED), ("server_error", ErrorCode.NETWORK_ERROR)]
    )
    async def test_a_throttled_or_failing_token_endpoint_is_not_a_dead_grant(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo, fault: str, expected: ErrorCode
    ) -> None:
        if not (self.refreshes or self.extends):
            expected = ErrorCode.TOKEN_EXPIRED  # nothing to refresh with: only a reconnect helps
        await emu.add_fault(fault, platform=self.platform.value, applies_to="any")
        with pytest.raises(PlatformError) as caught:
            await client.refresh(self.tokens(account))
        assert caught.value.code is expected

    async def test_a_dead_grant_is_token_expired(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        await emu.expire_token(self.platform.value, account.account_id, "both")
        with pytest.raises(PlatformError) as caught:
            await client.refresh(self.tokens(account))
        assert caught.value.code is ErrorCode.TOKEN_EXPIRED

    async def test_a_lost_answer_is_ambiguous_and_reconciles_to_the_one_post(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        job, session, checkpoint = self.job(), self.session(account), MemoryCheckpoint()
        await emu.add_fault("lost_response", platform=self.platform.value, count=1, hold_ms=0, drop_connection=True)
        with pytest.raises(AmbiguousPublish):
            await client.publish(job, session, checkpoint)
        posts = await emu.posts(self.platform.value, account.account_id)
        assert len(posts) == 1  # it did go live
        if not self.reconcilable_after_loss:
            with pytest.raises(PlatformError) as caught:
                await client.reconcile(job, session, checkpoint, job.due_at)
            assert caught.value.code is ErrorCode.PUBLISH_UNCONFIRMED
        else:
            found = await client.reconcile(job, session, checkpoint, job.due_at)
            assert found.remote_id == posts[0].remote_id
        assert len(await emu.posts(self.platform.value, account.account_id)) == 1


class ProcessedVideo(PlatformContract):
    """Flows where the platform processes an uploaded video before a post may name it."""

    async def test_the_post_waits_for_processing(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        await emu.set_processing(300, platform=self.platform.value)
        published = await client.publish(self.job(), self.session(account), MemoryCheckpoint())
        (post,) = await emu.posts(self.platform.value, account.account_id)
        assert (post.remote_id, post.media_type.lower()) == (published.remote_id, "video")

    async def test_failed_processing_is_content_rejected(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        await emu.set_processing(0, platform=self.platform.value, outcome="error")
        assert (await self.refused(client, account)).code is ErrorCode.CONTENT_REJECTED
        assert await emu.posts(self.platform.value, account.account_id) == []


class ReadyAtOnce(PlatformContract):
    """Container flows whose text and single-image containers are published without a status
    poll, falling back to polling when the platform answers "not ready"."""

    @staticmethod
    def recorded(http: httpx.AsyncClient) -> list[tuple[str, str]]:
        calls: list[tuple[str, str]] = []

        async def record(request: httpx.Request) -> None:
            calls.append((request.method, request.url.path.rsplit("/", 1)[-1]))

        http.event_hooks["request"].append(record)
        return calls

    async def test_a_ready_container_is_published_without_asking_its_status(
        self, client: PlatformClient, http: httpx.AsyncClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        calls = self.recorded(http)
        published = await client.publish(self.job(), self.session(account), MemoryCheckpoint())
        container_edge, publish_edge = client.container_edge, client.publish_edge  # type: ignore[attr-defined]
        assert calls == [("POST", container_edge), ("POST", publish_edge), ("GET", published.remote_id)]

    async def test_a_container_still_processing_is_published_once_finished(
        self, client: PlatformClient, http: httpx.AsyncClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        await emu.set_processing(300, platform=self.platform.value)
        calls = self.recorded(http)
        published = await client.publish(self.job(), self.session(account), MemoryCheckpoint())
        (post,) = await emu.posts(self.platform.value, account.account_id)
        assert post.remote_id == published.remote_id
        publish_edge = client.publish_edge  # type: ignore[attr-defined]
        assert [c for c in calls if c == ("POST", publish_edge)] == [("POST", publish_edge)] * 2  # refused, then live


class TestInstagram(ReadyAtOnce):
    platform = Platform.INSTAGRAM
    media: ClassVar[list[MediaRef]] = [IMAGE]
    refreshes = False
    extends = True


class TestThreads(ReadyAtOnce):
    platform = Platform.THREADS
    refreshes = False
    extends = True


class TestFacebook(PlatformContract):
    platform = Platform.FACEBOOK
    refreshes = False
    extends = True


class TestFacebookPhotoStory(TestFacebook):
    fmt = PostFormat.STORY
    media: ClassVar[list[MediaRef]] = [IMAGE]

    async def test_the_story_is_the_saved_photo(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        checkpoint = MemoryCheckpoint()
        await client.publish(self.job(), self.session(account), checkpoint)
        (post,) = await emu.posts("facebook", account.account_id)
        assert (post.media_type, post.extra["story_media_id"]) == ("STORY", checkpoint.saved["photo_id"])

    async def test_without_a_saved_photo_nothing_went_live(self, client: PlatformClient, account: AccountInfo) -> None:
        job = self.job()
        with pytest.raises(NotLive):
            await client.reconcile(job, self.session(account), MemoryCheckpoint(), job.due_at)


class TestFacebookVideoStory(TestFacebook):
    fmt = PostFormat.STORY
    media: ClassVar[list[MediaRef]] = [VIDEO]

    async def test_an_unfinished_upload_is_finished_once_on_reconciliation(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        job, session, checkpoint = self.job(), self.session(account), MemoryCheckpoint()
        await emu.add_fault("server_error", platform="facebook", count=1)  # the finish call fails
        with pytest.raises(AmbiguousPublish):  # a 500 from the call that goes live: maybe live
            await client.publish(job, session, checkpoint)
        assert await emu.posts("facebook", account.account_id) == []
        found = await client.reconcile(job, session, checkpoint, job.due_at)
        (post,) = await emu.posts("facebook", account.account_id)
        assert found.remote_id == post.remote_id
        assert post.extra["story_media_id"] == checkpoint.saved["video_id"]  # the same upload, not a new one


class TestX(PlatformContract):
    platform = Platform.X
    rotates = True


class TestTikTok(PlatformContract):
    platform = Platform.TIKTOK
    fmt = PostFormat.VIDEO
    media: ClassVar[list[MediaRef]] = [VIDEO]
    rotates = True
    reconcilable_after_loss = False  # the init answer carried the publish_id

    async def test_an_unaudited_app_posts_privately_and_says_so(
        self, client: PlatformClient, emu: EmulatorClient
    ) -> None:
        account = await emu.create_account("tiktok", audited=False)
        published = await client.publish(self.job(), self.session(account), MemoryCheckpoint())
        assert published.visibility == "private"
        (post,) = await emu.posts("tiktok", account.account_id)
        assert post.privacy == "SELF_ONLY"

    async def test_drafts_inbox_mode_is_a_per_post_option(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        job = due(Platform.TIKTOK, fmt=PostFormat.VIDEO, media=[VIDEO], options={"tiktok_inbox": True})
        published = await client.publish(job, self.session(account), MemoryCheckpoint())
        assert published.visibility == "inbox"
        (post,) = await emu.posts("tiktok", account.account_id)
        assert post.status == "inbox"


class TestYouTube(PlatformContract):
    platform = Platform.YOUTUBE
    fmt = PostFormat.VIDEO
    media: ClassVar[list[MediaRef]] = [VIDEO]
    spam_code = ErrorCode.CONTENT_REJECTED


class TestLinkedIn(PlatformContract):
    platform = Platform.LINKEDIN


class TestLinkedInImage(TestLinkedIn):
    media: ClassVar[list[MediaRef]] = [IMAGE]

    async def test_the_post_names_the_saved_image(
        self, client: PlatformClient, emu: EmulatorClient, account: AccountInfo
    ) -> None:
        checkpoint = MemoryCheckpoint()
        await client.publish(self.job(), self.session(account), checkpoint)
        (post,) = await emu.posts("linkedin", account.account_id)
        assert post.media_type == "IMAGE"
        assert post.extra["content"]["media"]["id"] == checkpoint.saved["media_urn"]


class TestLinkedInVideo(TestLinkedIn, ProcessedVideo):
    fmt = PostFormat.VIDEO
    media: ClassVar[list[MediaRef]] = [VIDEO]


class TestPinterest(PlatformContract):
    platform = Platform.PINTEREST
    media: ClassVar[list[MediaRef]] = [IMAGE]
    profile: ClassVar[dict[str, Any]] = {"board_id": "board-1"}


class TestPinterestVideo(TestPinterest, ProcessedVideo):
    fmt = PostFormat.VIDEO
    media: ClassVar[list[MediaRef]] = [VIDEO, IMAGE]  # the image is the cover


class TestTelegram(PlatformContract):
    platform = Platform.TELEGRAM
    profile: ClassVar[dict[str, Any]] = {"chat_id": "@channel"}
    spam_code = ErrorCode.ACCOUNT_INACTIVE
    refreshes = False
    reconcilable_after_loss = False
