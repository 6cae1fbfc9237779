"""The emulator's in-memory world: accounts and their tokens, live posts, limits, faults, settings."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import secrets
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.emulator.config import PLATFORMS, TOKEN_POLICIES, EmulatorConfig, Limits
from tools.emulator.errors import Reason, Rejection
from tools.emulator.faults import FaultBook
from tools.emulator.quota import Usage

Outcome = Literal["ok", "error", "expired"]


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AccountSpec(BaseModel):
    """Control-API body that creates an account; everything but `platform` has a generated default."""

    model_config = ConfigDict(extra="forbid")

    platform: str
    account_id: str | None = None
    username: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    access_expires_in: float | None = Field(default=None, description="seconds; default: the platform's lifetime")
    refresh_expires_in: float | None = None
    never_expires: bool = False
    scopes: list[str] = Field(default_factory=list)
    audited: bool = True  # TikTok audited app / YouTube verified project; False forces private posts
    rotate_refresh_token: bool | None = None  # default: the platform's policy (X and TikTok rotate)
    options: dict[str, Any] = Field(default_factory=dict)  # telegram: {"migrate": {"<chat_id>": <new_chat_id>}}


@dataclass(eq=False)
class Account:
    platform: str
    account_id: str
    username: str
    scopes: list[str]
    audited: bool
    rotates_refresh_token: bool
    options: dict[str, Any]
    created_at: float
    access_token: str = ""
    access_expires_at: float | None = None
    refresh_token: str | None = None
    refresh_expires_at: float | None = None
    revoked: bool = False
    usage: Usage = field(default_factory=Usage)
    limits: Limits | None = None  # per-account override of the platform's limits

    def as_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "account_id": self.account_id,
            "username": self.username,
            "access_token": self.access_token,
            "access_expires_at": self.access_expires_at,
            "refresh_token": self.refresh_token,
            "refresh_expires_at": self.refresh_expires_at,
            "scopes": self.scopes,
            "audited": self.audited,
            "rotates_refresh_token": self.rotates_refresh_token,
            "revoked": self.revoked,
            "options": self.options,
        }


@dataclass(eq=False)
class Grant:
    token: str
    account: Account
    expires_at: float | None


@dataclass(eq=False)
class Post:
    platform: str
    account_id: str
    remote_id: str
    text: str
    created_at: float
    media_type: str
    permalink: str | None
    ready_at: float  # until then the post is "processing" (TikTok, YouTube)
    final_status: str = "live"  # live | inbox (TikTok drafts) | failed
    privacy: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def status(self, now: float) -> str:
        return "processing" if now < self.ready_at else self.final_status

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "account_id": self.account_id,
            "remote_id": self.remote_id,
            "text": self.text,
            "created_at": rfc3339(self.created_at),
            "created_ts": self.created_at,
            "media_type": self.media_type,
            "permalink": self.permalink,
            "status": self.status(now),
            "privacy": self.privacy,
            "extra": self.extra,
        }


@dataclass
class InsightOverride:
    metrics: dict[str, int]
    not_enough_viewers: bool = False


@dataclass
class Processing:
    delay_s: float
    outcome: Outcome = "ok"


class Emulator:
    def __init__(self, config: EmulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._reset_hooks: list[Callable[[], None]] = []
        self.reset()

    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        config = self.config
        self.rng = random.Random(config.seed)  # noqa: S311 - fault injection, not security
        self.faults = FaultBook(self.rng)
        self.clock_offset = 0.0
        self.latency_s = config.latency_ms / 1000
        self.platform_latency_s = {p: ms / 1000 for p, ms in config.platform_latency_ms.items()}
        self.account_latency_s: dict[tuple[str, str], float] = {}  # (platform, account id): one slow account
        self.processing = {p: Processing(config.processing_delay_ms / 1000) for p in PLATFORMS}
        self.limits = {p: config.limits_for(p) for p in PLATFORMS}
        self.accounts: dict[tuple[str, str], Account] = {}
        self.access: dict[str, Grant] = {}
        self.refresh: dict[str, Grant] = {}
        self.posts: list[Post] = []
        self.posts_by_id: dict[tuple[str, str], Post] = {}
        self.first_by_text: dict[tuple[str, str, str], Post] = {}
        self.insights: dict[tuple[str, str], InsightOverride] = {}
        self.requests: Counter[str] = Counter()
        self.linkedin_retired: set[str] = set()
        self.linkedin_active_from: str | None = None
        self._ids = itertools.count(1)
        for hook in self._reset_hooks:
            hook()

    # time, ids, latency

    def now(self) -> float:
        return self._clock() + self.clock_offset

    def next_id(self) -> int:
        return next(self._ids)

    async def delay(self, platform: str, account_id: str | None = None) -> None:
        seconds = self.account_latency_s.get((platform, account_id or ""))
        if seconds is None:
            seconds = self.platform_latency_s.get(platform, self.latency_s)
        if seconds > 0:
            await asyncio.sleep(seconds)

    # accounts and tokens

    def create_account(self, spec: AccountSpec) -> Account:
        if spec.platform not in PLATFORMS:
            raise ValueError(f"unknown platform {spec.platform!r}; one of {', '.join(PLATFORMS)}")
        policy = TOKEN_POLICIES[spec.platform]
        n = self.next_id()
        account_id = spec.account_id or _default_account_id(spec.platform, n)
        if (spec.platform, account_id) in self.accounts:
            raise ValueError(f"account {spec.platform}/{account_id} exists")
        account = Account(
            platform=spec.platform,
            account_id=account_id,
            username=spec.username or f"{spec.platform}_user_{n}",
            scopes=spec.scopes,
            audited=spec.audited,
            rotates_refresh_token=(
                policy.rotates_refresh_token if spec.rotate_refresh_token is None else spec.rotate_refresh_token
            ),
            options=spec.options,
            created_at=self.now(),
        )
        self.accounts[(spec.platform, account_id)] = account
        access_ttl = _pick(spec.access_expires_in, policy.access_ttl_s, spec.never_expires)
        refresh_ttl = _pick(spec.refresh_expires_in, policy.refresh_ttl_s, spec.never_expires)
        with_refresh = policy.has_refresh_token or spec.refresh_token is not None
        self.issue_tokens(
            account,
            access_ttl,
            refresh_ttl,
            with_refresh=with_refresh,
            access_token=spec.access_token,
            refresh_token=spec.refresh_token,
        )
        return account

    def issue_tokens(
        self,
        account: Account,
        access_ttl: float | None,
        refresh_ttl: float | None,
        *,
        with_refresh: bool,
        access_token: str | None = None,
        refresh_token: str | None = None,
    ) -> None:
        """New access (and refresh) token; earlier access tokens stay valid until they expire."""
        now = self.now()
        if account.platform == "telegram":
            access_token = access_token or f"{account.account_id}:{secrets.token_urlsafe(26)}"
        token = access_token or f"{account.platform[:2]}at-{secrets.token_urlsafe(18)}"
        grant = Grant(token, account, None if access_ttl is None else now + access_ttl)
        self.access[token] = grant
        account.access_token, account.access_expires_at = token, grant.expires_at
        account.revoked = False
        if with_refresh:
            if account.refresh_token is not None:
                self.refresh.pop(account.refresh_token, None)
            value = refresh_token or f"{account.platform[:2]}rt-{secrets.token_urlsafe(18)}"
            rgrant = Grant(value, account, None if refresh_ttl is None else now + refresh_ttl)
            self.refresh[value] = rgrant
            account.refresh_token, account.refresh_expires_at = value, rgrant.expires_at

    def account(self, platform: str, account_id: str) -> Account | None:
        return self.accounts.get((platform, account_id))

    def authenticate(self, platform: str, token: str | None) -> Account:
        grant = self.access.get(token) if token else None
        if grant is None or grant.account.platform != platform:
            raise Rejection(Reason.TOKEN_INVALID)
        if grant.account.revoked:
            raise Rejection(Reason.TOKEN_REVOKED)
        if grant.expires_at is not None and grant.expires_at <= self.now():
            raise Rejection(Reason.TOKEN_EXPIRED, detail={"expired_at": grant.expires_at})
        return grant.account

    def use_refresh_token(self, platform: str, token: str | None) -> Account:
        """Exchange a refresh token: new access token; a rotating platform also replaces the refresh token
        (the old one stops working), the others keep it."""
        grant = self.refresh.get(token) if token else None
        now = self.now()
        if grant is None or grant.account.platform != platform or grant.account.revoked:
            raise Rejection(Reason.REFRESH_INVALID)
        if grant.expires_at is not None and grant.expires_at <= now:
            raise Rejection(Reason.REFRESH_INVALID)
        account = grant.account
        policy = TOKEN_POLICIES[platform]
        if account.rotates_refresh_token:
            self.issue_tokens(account, policy.access_ttl_s, policy.refresh_ttl_s, with_refresh=True)
        else:
            self.issue_tokens(account, policy.access_ttl_s, None, with_refresh=False)
        return account

    def extend_access_token(self, platform: str, token: str | None) -> Account:
        """IG/Threads/Facebook style: a valid long-lived token buys a new one with a fresh lifetime."""
        account = self.authenticate(platform, token)
        self.issue_tokens(account, TOKEN_POLICIES[platform].access_ttl_s, None, with_refresh=False)
        return account

    def expire_tokens(self, account: Account, which: Literal["access", "refresh", "both"]) -> None:
        past = self.now() - 1
        for grant in list(self.access.values()) if which != "refresh" else []:
            if grant.account is account:
                grant.expires_at = past
        if which != "access" and account.refresh_token in self.refresh:
            self.refresh[account.refresh_token].expires_at = past
        if which != "refresh":
            account.access_expires_at = past
        if which != "access" and account.refresh_token is not None:
            account.refresh_expires_at = past

    # limits

    def limits_of(self, account: Account) -> Limits:
        return account.limits or self.limits[account.platform]

    def take_request(self, account: Account) -> None:
        limits = self.limits_of(account)
        now = self.now()
        if not account.usage.take_request(limits, now):
            _, reset = account.usage.request_window(limits, now)
            raise Rejection(
                Reason.RATE_LIMITED,
                retry_after=max(1, int(reset - now + 0.999)),
                detail={"limit": limits.request_limit, "reset": reset},
            )

    def check_publish_quota(self, account: Account) -> None:
        limits = self.limits_of(account)
        now = self.now()
        remaining = account.usage.publish_remaining(limits, now)
        if remaining == 0:
            reset = account.usage.publish_reset_at(limits, now)
            raise Rejection(
                Reason.QUOTA_REACHED,
                retry_after=max(1, int(reset - now + 0.999)),
                detail={"limit": limits.publish_limit, "reset": reset},
            )

    # posts

    def record_post(
        self,
        account: Account,
        remote_id: str,
        text: str,
        *,
        media_type: str,
        permalink: str | None,
        processing_s: float = 0.0,
        final_status: str = "live",
        privacy: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Post:
        now = self.now()
        post = Post(
            platform=account.platform,
            account_id=account.account_id,
            remote_id=remote_id,
            text=text,
            created_at=now,
            media_type=media_type,
            permalink=permalink,
            ready_at=now + processing_s,
            final_status=final_status,
            privacy=privacy,
            extra=extra or {},
        )
        self.posts.append(post)
        self.posts_by_id[(account.platform, remote_id)] = post
        self.first_by_text.setdefault((account.platform, account.account_id, text), post)
        account.usage.record_publish(now)
        return post

    def post(self, platform: str, remote_id: str) -> Post | None:
        return self.posts_by_id.get((platform, remote_id))

    def same_text(self, account: Account, text: str) -> Post | None:
        """An earlier post of this account with exactly this text (the platforms' duplicate check)."""
        return self.first_by_text.get((account.platform, account.account_id, text)) if text else None

    def posts_of(self, platform: str, account_id: str) -> list[Post]:
        """Newest first."""
        return [p for p in reversed(self.posts) if p.platform == platform and p.account_id == account_id]

    def processing_for(self, platform: str) -> Processing:
        return self.processing[platform]

    # insights

    def metric(self, platform: str, remote_id: str, name: str) -> int:
        """The set value, else a deterministic non-zero value derived from the post id and metric name."""
        override = self.insights.get((platform, remote_id))
        if override is not None and name in override.metrics:
            return override.metrics[name]
        base = 50 + zlib.crc32(remote_id.encode()) % 5000
        return 1 + zlib.crc32(f"{remote_id}:{name}".encode()) % base

    def account_metric(self, account: Account, name: str) -> int:
        """An account-level value (followers, ...): set through the control API, else derived."""
        return self.metric(account.platform, account_stats_key(account.account_id), name)

    def not_enough_viewers(self, platform: str, remote_id: str) -> bool:
        override = self.insights.get((platform, remote_id))
        return override is not None and override.not_enough_viewers

    # inspection

    def stats(self, key_pattern: str | None = None) -> dict[str, Any]:
        pattern = re.compile(key_pattern) if key_pattern else None
        groups: dict[tuple[str, str, str], list[Post]] = {}
        by_platform: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        now = self.now()
        for post in self.posts:
            status = post.status(now)
            by_platform[post.platform] += 1
            by_status[status] += 1
            if status == "failed":  # processing failed: never went live, so never a duplicate
                continue
            groups.setdefault((post.platform, post.account_id, _content_key(post.text, pattern)), []).append(post)
        duplicated = [(key, posts) for key, posts in groups.items() if len(posts) > 1]
        return {
            "posts": len(self.posts),
            "posts_by_platform": dict(by_platform),
            "posts_by_status": dict(by_status),
            "duplicates": sum(len(posts) - 1 for _, posts in duplicated),
            "duplicate_groups": len(duplicated),
            "duplicate_examples": [
                {
                    "platform": platform,
                    "account_id": account_id,
                    "content_key": key,
                    "count": len(posts),
                    "remote_ids": [p.remote_id for p in posts],
                }
                for (platform, account_id, key), posts in duplicated[:50]
            ],
            "accounts": len(self.accounts),
            "requests": sum(self.requests.values()),
            "requests_by_platform": dict(self.requests),
        }


def account_stats_key(account_id: str) -> str:
    """Where an account's own values live among the insight overrides (apart from its posts')."""
    return f"account:{account_id}"


def _pick(given: float | None, default: float | None, never: bool) -> float | None:
    if never:
        return None
    return default if given is None else given


def _content_key(text: str, pattern: re.Pattern[str] | None) -> str:
    if pattern is not None:
        match = pattern.search(text)
        if match is not None:
            return match.group(1) if match.groups() else match.group(0)
    return text.strip()


# Ids shaped like the platform's: (format, offset added to the emulator's counter).
_ACCOUNT_IDS: dict[str, tuple[str, int]] = {
    "instagram": ("{}", 17_841_400_000_000_000),
    "threads": ("{}", 25_000_000_000_000_000),
    "facebook": ("{}", 100_000_000_000_000),
    "x": ("{}", 1_500_000_000_000_000_000),
    "tiktok": ("_000{:012d}", 0),
    "youtube": ("UC{:022d}", 0),
    "linkedin": ("li{:08d}", 0),
    "pinterest": ("{}", 900_000_000_000_000_000),
    "telegram": ("{}", 7_000_000_000),
}


def _default_account_id(platform: str, n: int) -> str:
    pattern, offset = _ACCOUNT_IDS[platform]
    return pattern.format(offset + n)
