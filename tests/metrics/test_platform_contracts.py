"""One contract, run against every platform's insight module and the emulator in-process:
the platform's names map onto the canonical ones (per post and per account), missing values stay
None, a bad token, a throttled call and a token refresh are translated the same way everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from metrics.domain import AccountMetrics
from metrics.platforms import SOURCES
from metrics.platforms.base import AccountRef, HttpPlatform, OAuthClient, PostRef, RateLimited, TokenRejected
from metrics.platforms.linkedin import LinkedInInsights
from metrics.platforms.tiktok import TikTokInsights
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform
from tools.emulator import EmulatorConfig, create_app
from tools.emulator.client import AccountInfo, EmulatorClient
from tools.emulator.state import Emulator

NOW = datetime.now(UTC)


class InsightContract:
    platform: ClassVar[Platform]
    # platform metric name -> value set in the emulator, and what it must map to
    values: ClassVar[dict[str, int]]
    expected: ClassVar[CanonicalMetrics]
    # account-level values set in the emulator, and what they must map to
    account_values: ClassVar[dict[str, int]]
    expected_account: ClassVar[AccountMetrics]
    token_url: ClassVar[str | None] = None
    refreshable: ClassVar[bool] = True  # the emulator can hand out a new token after expiry

    def remote_id(self, n: int) -> str:
        return str(9_100_000_000 + n)

    @pytest.fixture
    def app(self) -> Starlette:
        return create_app(EmulatorConfig(processing_delay_ms=0, seed=3, realistic_limits=False))

    @pytest.fixture
    async def emu(self, app: Starlette) -> AsyncIterator[EmulatorClient]:
        async with EmulatorClient("http://emu", transport=httpx.ASGITransport(app=app)) as client:
            yield client

    @pytest.fixture
    async def source(self, app: Starlette) -> AsyncIterator[HttpPlatform]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(base_url=f"http://emu/{self.platform.value}", transport=transport) as http:
            kind = SOURCES[self.platform]
            token_url = f"http://emu/{self.platform.value}{self.token_url}" if self.token_url else None
            yield kind(http, OAuthClient("client-1", SecretStr("secret-1"), token_url))

    @pytest.fixture
    async def account(self, emu: EmulatorClient) -> AccountInfo:
        return await emu.create_account(self.platform.value)

    @pytest.fixture
    def post(self, app: Starlette, account: AccountInfo) -> PostRef:
        emulator: Emulator = app.state.emulator
        owner = emulator.account(self.platform.value, account.account_id)
        assert owner is not None
        remote_id = self.remote_id(emulator.next_id())
        emulator.record_post(owner, remote_id, "hello", media_type="TEXT", permalink=None)
        return PostRef("post-1", remote_id, account.account_id, NOW - timedelta(hours=2))

    async def test_maps_platform_names_onto_canonical_metrics(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        await emu.set_insights(self.platform.value, post.remote_id, self.values)
        insights = await source.fetch(post, account.access_token, NOW)
        assert insights.status == "ok"
        assert insights.metrics == self.expected
        assert insights.raw, "the raw payload is kept"

    async def test_account_stats_map_onto_canonical_names(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo
    ) -> None:
        await emu.set_account_stats(self.platform.value, account.account_id, self.account_values)
        stats = await source.fetch_account(self.account_ref(account), account.access_token, NOW)  # type: ignore[attr-defined]
        assert stats.metrics == self.expected_account
        assert stats.raw, "the raw payload is kept"

    async def test_account_stats_with_a_rejected_token_are_reported_as_such(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo
    ) -> None:
        await emu.expire_token(self.platform.value, account.account_id)
        with pytest.raises(TokenRejected):
            await source.fetch_account(self.account_ref(account), account.access_token, NOW)  # type: ignore[attr-defined]

    def account_ref(self, account: AccountInfo) -> AccountRef:
        return AccountRef(f"acct-{account.account_id}", account.account_id)

    async def test_metrics_the_platform_does_not_have_are_none_not_zero(
        self, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        insights = await source.fetch(post, account.access_token, NOW)
        for name, value in self.expected.model_dump().items():
            if value is None:
                assert getattr(insights.metrics, name) is None, name
            else:
                assert isinstance(getattr(insights.metrics, name), int), name

    async def test_a_rejected_token_is_reported_as_such(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        await emu.expire_token(self.platform.value, account.account_id)
        with pytest.raises(TokenRejected):
            await source.fetch(post, account.access_token, NOW)

    async def test_throttling_is_reported_as_a_rate_limit(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        await emu.add_fault("rate_limit", platform=self.platform.value, applies_to="any", count=1)
        with pytest.raises(RateLimited):
            await source.fetch(post, account.access_token, NOW)
        insights = await source.fetch(post, account.access_token, NOW)
        assert insights.status == "ok"

    async def test_refreshed_tokens_work(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        tokens = OAuthTokens(
            access_token=SecretStr(account.access_token),
            refresh_token=SecretStr(account.refresh_token) if account.refresh_token else None,
        )
        if self.refreshable:
            await emu.expire_token(self.platform.value, account.account_id)
        new = await source.refresh(tokens)  # type: ignore[attr-defined]
        assert new.access_token.get_secret_value() != account.access_token
        insights = await source.fetch(post, new.access_token.get_secret_value(), NOW)
        assert insights.status == "ok"


class TestInstagram(InsightContract):
    platform = Platform.INSTAGRAM
    values: ClassVar = {"views": 900, "reach": 700, "likes": 50, "comments": 7, "shares": 3, "saved": 11}
    expected = CanonicalMetrics(views=900, reach=700, likes=50, comments=7, shares=3, saves=11)
    account_values: ClassVar = {"followers_count": 1200, "reach": 640}
    expected_account = AccountMetrics(followers=1200, posts=0, reach=640)  # media_count: the emulator counts them
    refreshable = False  # a long-lived token is extended while still valid

    async def test_not_enough_viewers_is_no_data_not_an_error(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        await emu.set_insights(self.platform.value, post.remote_id, not_enough_viewers=True)
        insights = await source.fetch(post, account.access_token, NOW)
        assert insights.status == "not_enough_data"
        assert insights.metrics == CanonicalMetrics()
        assert "Not enough viewers" in (insights.note or "")

    def test_deprecated_names_are_a_fallback_only(self, source: HttpPlatform) -> None:
        mapper = source.map  # type: ignore[attr-defined]
        assert mapper({"impressions": 40, "saved": 2}) == CanonicalMetrics(views=40, saves=2)
        assert mapper({"views": 50, "plays": 40, "impressions": 30}).views == 50


class TestThreads(InsightContract):
    platform = Platform.THREADS
    values: ClassVar = {"views": 500, "likes": 40, "replies": 6, "reposts": 4, "quotes": 2, "shares": 1}
    expected = CanonicalMetrics(views=500, likes=40, comments=6, shares=7)
    account_values: ClassVar = {"followers_count": 88}
    expected_account = AccountMetrics(followers=88)
    refreshable = False

    def account_ref(self, account: AccountInfo) -> AccountRef:
        return AccountRef(f"acct-{account.account_id}")  # no platform-side id recorded: `me`


class TestFacebook(InsightContract):
    platform = Platform.FACEBOOK
    values: ClassVar = {
        "post_media_view": 800,
        "post_total_media_view_unique": 600,
        "post_clicks": 30,
        "post_reactions_like_total": 45,
        "comments": 12,
        "shares": 4,
        "reactions": 60,
    }
    expected = CanonicalMetrics(views=800, reach=600, likes=45, comments=12, shares=4, clicks=30)
    account_values: ClassVar = {"followers_count": 5100, "fan_count": 4900}
    expected_account = AccountMetrics(followers=5100, likes=4900)
    refreshable = False

    async def test_comments_and_shares_come_from_the_post_and_no_shares_is_zero(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        await emu.set_insights(self.platform.value, post.remote_id, {"comments": 3, "shares": 0})
        insights = await source.fetch(post, account.access_token, NOW)
        assert (insights.metrics.comments, insights.metrics.shares) == (3, 0)
        assert "shares" not in insights.raw["post"]  # Graph leaves it out; zero, not unknown
        assert insights.raw["post"]["comments"]["summary"]["total_count"] == 3
        assert insights.raw["data"], "the insights answer is kept next to the post's"


class TestX(InsightContract):
    platform = Platform.X
    values: ClassVar = {
        "impression_count": 1200,
        "like_count": 80,
        "reply_count": 9,
        "retweet_count": 5,
        "quote_count": 2,
        "bookmark_count": 4,
    }
    expected = CanonicalMetrics(views=1200, likes=80, comments=9, shares=7, saves=4)
    account_values: ClassVar = {"followers_count": 700, "tweet_count": 1500, "like_count": 99}
    expected_account = AccountMetrics(followers=700, posts=1500)  # like_count = likes given, not received

    async def test_a_private_impression_count_of_zero_is_kept(self) -> None:
        body = {
            "data": {
                "id": "1",
                "public_metrics": {"impression_count": 50},
                "non_public_metrics": {"impression_count": 0},
            }
        }
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
        async with httpx.AsyncClient(base_url="http://x", transport=transport) as http:
            source = SOURCES[Platform.X](http, OAuthClient("client-1", SecretStr("secret-1"), None))
            insights = await source.fetch(PostRef("post-1", "1", "acct", NOW - timedelta(hours=2)), "token", NOW)
        assert insights.metrics.views == 0


class TestTikTok(InsightContract):
    platform = Platform.TIKTOK
    values: ClassVar = {"view_count": 5000, "like_count": 300, "comment_count": 20, "share_count": 15}
    expected = CanonicalMetrics(views=5000, likes=300, comments=20, shares=15)
    account_values: ClassVar = {"follower_count": 4200, "likes_count": 91000, "video_count": 57}
    expected_account = AccountMetrics(followers=4200, posts=57, likes=91000)

    async def test_many_videos_in_one_call_each_mapped_to_its_post(
        self, app: Starlette, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        assert isinstance(source, TikTokInsights)
        emulator: Emulator = app.state.emulator
        owner = emulator.account(self.platform.value, account.account_id)
        assert owner is not None
        other = self.remote_id(emulator.next_id())
        emulator.record_post(owner, other, "second", media_type="VIDEO", permalink=None)
        await emu.set_insights(self.platform.value, post.remote_id, {"view_count": 10})
        await emu.set_insights(self.platform.value, other, {"view_count": 20})
        missing = PostRef("post-3", "9199999999", account.account_id, post.published_at)
        second = PostRef("post-2", other, account.account_id, post.published_at)
        before = (await emu.stats()).requests_by_platform.get("tiktok", 0)
        answers = await source.fetch_many([post, missing, second], account.access_token, NOW)
        assert (await emu.stats()).requests_by_platform["tiktok"] == before + 1
        assert [a.status for a in answers] == ["ok", "not_enough_data", "ok"]
        assert [a.metrics.views for a in answers] == [10, None, 20]
        assert answers[2].raw["data"]["videos"][0]["id"] == other  # each post keeps its own video


class TestYouTube(InsightContract):
    platform = Platform.YOUTUBE
    values: ClassVar = {"viewCount": 777, "likeCount": 66, "commentCount": 5}
    expected = CanonicalMetrics(views=777, likes=66, comments=5)
    account_values: ClassVar = {"subscriberCount": 320, "viewCount": 45000, "videoCount": 12}
    expected_account = AccountMetrics(followers=320, posts=12, views=45000)
    token_url = "/token"


class TestLinkedIn(InsightContract):
    platform = Platform.LINKEDIN
    values: ClassVar = {"IMPRESSION": 400, "MEMBERS_REACHED": 250, "REACTION": 30, "COMMENT": 4, "RESHARE": 2}
    expected = CanonicalMetrics(views=400, reach=250, likes=30, comments=4, shares=2)
    account_values: ClassVar = {"memberFollowersCount": 640, "firstDegreeSize": 15000}
    expected_account = AccountMetrics(followers=640)
    token_url = "/oauth/v2/accessToken"

    async def test_an_organization_account_counts_the_organization_followers(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo
    ) -> None:
        await emu.set_account_stats(self.platform.value, account.account_id, self.account_values)
        org = AccountRef("acct-1", account.account_id, {"author_urn": "urn:li:organization:2414183"})
        stats = await source.fetch_account(org, account.access_token, NOW)  # type: ignore[attr-defined]
        assert stats.metrics == AccountMetrics(followers=15000)

    def remote_id(self, n: int) -> str:
        return f"urn:li:share:{7_000_000 + n}"

    async def test_a_retired_api_version_is_a_permanent_error(
        self, emu: EmulatorClient, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        assert isinstance(source, LinkedInInsights)
        await emu.set_linkedin_versions(retired=[source.version])
        with pytest.raises(Exception, match="retired"):
            await source.fetch(post, account.access_token, NOW)


class TestPinterest(InsightContract):
    platform = Platform.PINTEREST
    values: ClassVar = {"IMPRESSION": 3000, "SAVE": 25, "PIN_CLICK": 40, "OUTBOUND_CLICK": 10}
    expected = CanonicalMetrics(views=3000, saves=25, clicks=50)
    account_values: ClassVar = {"follower_count": 230, "pin_count": 410, "monthly_views": 9000}
    expected_account = AccountMetrics(followers=230, posts=410)

    async def test_pins_older_than_the_analytics_window_are_too_old(
        self, source: HttpPlatform, account: AccountInfo, post: PostRef
    ) -> None:
        old = PostRef(post.post_id, post.remote_id, post.account_id, NOW - timedelta(days=120))
        insights = await source.fetch(old, account.access_token, NOW)
        assert insights.status == "too_old"
        assert insights.metrics == CanonicalMetrics()


def test_every_platform_with_metrics_has_a_module_and_telegram_has_none() -> None:
    assert set(SOURCES) == set(Platform) - {Platform.TELEGRAM}
