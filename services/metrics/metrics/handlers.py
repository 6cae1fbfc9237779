"""Use cases of the metrics service: plan pulls for published posts, run them when due, refresh
on demand, and answer readers.

Ownership follows Kafka, as in the scheduler: `posts.published.v1` is keyed by post, and the
replica that consumes a post's partition owns its plan. It loads the plans of its partitions
when they are assigned and keeps their due times in memory (no database polling); every plan
change is saved before the next step relies on it, so a restart or a rebalance resumes exactly,
and a pull that fell due during downtime runs once, as a catch-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from metrics import domain
from metrics.domain import (
    UNSUPPORTED_PLATFORMS,
    Freshness,
    Plan,
    PullPolicy,
    PullReason,
    PullStatus,
    Rollup,
)
from metrics.instruments import PullMetrics, build_pull_metrics
from metrics.platforms.base import (
    InsightError,
    Insights,
    InsightSource,
    PermanentError,
    PostGone,
    PostRef,
    RateLimited,
    TokenRejected,
    TransientError,
)
from metrics.ports import Clock, Credentials, EventSink, MetricsStore, PostView, PullRecord, Snapshot, TrackedPost
from shared.credentials import CredentialsNotFound, StaleCredentials, StoredCredentials, UndecryptableCredentials
from shared.events import AccountStatus, CanonicalMetrics, Platform, PostMetricsSynced, PostPublished
from shared.kafka import Delivery
from shared.logging import get_logger, log_context
from shared.timers import DueHeap
from shared.topics import METRICS_SYNCED

log = get_logger(__name__)

PRODUCER = "metrics"
_EVENT_NAMESPACE = UUID("8a4f2b1c-7d3e-4f5a-9b6c-1e2d3f4a5b6c")
_ERROR_RETRY = timedelta(seconds=30)


@dataclass(frozen=True)
class MetricsConfig:
    policy: PullPolicy = field(default_factory=PullPolicy)
    refresh_min_interval: timedelta = timedelta(minutes=5)
    stale_after: timedelta = timedelta(hours=26)
    max_concurrent_pulls: int = 16
    dispatch_chunk: int = 500


@dataclass(frozen=True)
class Attempt:
    """What calling the platform gave (before anything is stored)."""

    status: PullStatus
    insights: Insights | None = None
    retry_at: datetime | None = None
    note: str | None = None
    error: dict[str, Any] | None = None


class NotFound(Exception):
    pass


class RefreshRefused(Exception):
    def __init__(self, reason: str, *, code: str, retry_at: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retry_at = retry_at


@dataclass(frozen=True)
class Reading:
    """A post as the API shows it."""

    view: PostView
    freshness: Freshness
    age_seconds: float | None


class Timetable:
    """The plans this replica owns, in memory, with a heap of their due times."""

    def __init__(self) -> None:
        self._posts: dict[str, TrackedPost] = {}
        self._due = DueHeap(self._is_current)
        self.partitions: set[int] = set()

    def __len__(self) -> int:
        return len(self._posts)

    def get(self, post_id: str) -> TrackedPost | None:
        return self._posts.get(post_id)

    def put(self, post: TrackedPost) -> None:
        if post.plan is None:
            self._posts.pop(post.post_id, None)
            return
        self._posts[post.post_id] = post
        self._due.push(post.plan.due_at.timestamp(), post.post_id)

    def assign(self, partitions: Iterable[int], posts: Iterable[TrackedPost]) -> None:
        self.partitions |= set(partitions)
        for post in posts:
            self.put(post)

    def revoke(self, partitions: Iterable[int]) -> None:
        revoked = set(partitions)
        self.partitions -= revoked
        self._posts = {k: p for k, p in self._posts.items() if p.partition not in revoked}
        self._due.retain(self._posts)

    def next_due(self) -> float | None:
        return self._due.next_due()

    def pop_due(self, now: datetime, limit: int) -> list[TrackedPost]:
        """Take the due posts out; each is put back with its next plan once its pull has run."""
        return [self._posts.pop(post_id) for post_id in self._due.pop_due(now.timestamp(), limit)]

    def _is_current(self, ts: float, post_id: str) -> bool:
        post = self._posts.get(post_id)
        return post is not None and post.plan is not None and post.plan.due_at.timestamp() == ts


class MetricsService:
    def __init__(
        self,
        *,
        store: MetricsStore,
        credentials: Credentials,
        sources: Mapping[Platform, InsightSource],
        sink: EventSink,
        clock: Clock,
        config: MetricsConfig,
        instruments: PullMetrics | None = None,
    ) -> None:
        self.timetable = Timetable()
        self._instruments = instruments or build_pull_metrics()
        self.wakeup = asyncio.Event()
        self._store = store
        self._credentials = credentials
        self._sources = sources
        self._sink = sink
        self._clock = clock
        self._config = config
        self._slots = asyncio.Semaphore(config.max_concurrent_pulls)
        # Accounts a platform throttled, until when: their other pulls wait without calling.
        self._throttled: dict[tuple[Platform, str], datetime] = {}
        self._lock = asyncio.Lock()

    # ----- ownership ---------------------------------------------------------------------------

    async def assign(self, partitions: Collection[int]) -> None:
        posts = await self._store.load_active(partitions)
        async with self._lock:
            self.timetable.assign(partitions, posts)
        log.info("partitions assigned", partitions=sorted(partitions), plans=len(posts))
        self.wakeup.set()

    async def revoke(self, partitions: Collection[int]) -> None:
        async with self._lock:
            self.timetable.revoke(partitions)
        log.info("partitions revoked", partitions=sorted(partitions))

    # ----- consumed events ---------------------------------------------------------------------

    async def on_published(self, deliveries: Sequence[Delivery[PostPublished]]) -> None:
        """Plan the pulls of newly published posts. A redelivered event changes nothing."""
        policy = self._config.policy
        fresh: dict[str, TrackedPost] = {}
        for delivery in deliveries:
            event = delivery.event
            supported = event.platform not in UNSUPPORTED_PLATFORMS
            fresh[event.post_id] = TrackedPost(
                post_id=event.post_id,
                workspace_id=event.workspace_id,
                correlation_id=event.correlation_id,
                asset_id=event.asset_id,
                platform=event.platform,
                account_id=event.account_id,
                remote_id=event.remote_id,
                campaign=event.campaign,
                published_at=event.published_at,
                partition=delivery.partition,
                plan=domain.first_plan(event.post_id, event.published_at, policy) if supported else None,
                status=PullStatus.PENDING if supported else PullStatus.UNSUPPORTED,
            )
        existing = await self._store.add(list(fresh.values()))
        async with self._lock:
            for post_id, post in fresh.items():
                if post_id not in existing and post.partition in self.timetable.partitions:
                    self.timetable.put(post)
        if len(existing) < len(fresh):
            log.info("pulls planned", posts=len(fresh) - len(existing))
            self.wakeup.set()

    # ----- planned pulls -----------------------------------------------------------------------

    def seconds_until_next_due(self) -> float | None:
        next_ts = self.timetable.next_due()
        return None if next_ts is None else max(0.0, next_ts - self._clock.now().timestamp())

    async def run_due(self) -> int:
        """Run every planned pull that is due; returns how many ran."""
        ran = 0
        while True:
            async with self._lock:
                now = self._clock.now()
                due = self.timetable.pop_due(now, self._config.dispatch_chunk)
            if not due:
                return ran
            await asyncio.gather(*(self._run_planned(post, now) for post in due))
            ran += len(due)

    async def _run_planned(self, post: TrackedPost, now: datetime) -> None:
        plan = post.plan
        assert plan is not None
        reason = domain.reason_for(plan, now, self._config.policy)
        with log_context(post_id=post.post_id, platform=post.platform.value, reason=reason.value):
            try:
                async with self._slots:
                    started = time.perf_counter()
                    attempt = await self._collect(post, now)
                    self._instruments.pull_seconds.labels(post.platform.value).observe(time.perf_counter() - started)
                updated = replace(post, plan=self._next_plan(post, plan, attempt, now), status=attempt.status)
                await self._store_attempt(post, attempt, reason, now)
                await self._store.save_plan(updated)
                self._instruments.pulls.labels(post.platform.value, reason.value, attempt.status.value).inc()
            except Exception:
                log.exception("pull failed to be recorded; it stays planned and runs again")
                updated = replace(post, plan=replace(plan, due_at=now + _ERROR_RETRY))
            async with self._lock:
                if post.partition in self.timetable.partitions:
                    self.timetable.put(updated)
                self._instruments.planned.set(len(self.timetable))
        self.wakeup.set()

    def _next_plan(self, post: TrackedPost, plan: Plan, attempt: Attempt, now: datetime) -> Plan | None:
        policy = self._config.policy
        match attempt.status:
            case PullStatus.RATE_LIMITED:
                return domain.after_rate_limit(plan, now, attempt.retry_at, policy)
            case PullStatus.RETRYING:
                next_plan, gave_up = domain.after_failure(post.post_id, post.published_at, plan, now, policy)
                if gave_up:
                    log.warning("pull given up after its tries; the next planned pull still runs")
                return next_plan
            case PullStatus.DELETED | PullStatus.UNSUPPORTED:
                return None
            case _:
                return domain.after_pull(post.post_id, post.published_at, plan, now, policy)

    # ----- refresh now -------------------------------------------------------------------------

    async def refresh_now(self, post_id: str, workspace_id: str) -> Reading:
        view = await self._visible(post_id, workspace_id)
        now = self._clock.now()
        refused = domain.check_refresh(
            platform=view.post.platform,
            last_refresh_at=view.last_refresh_at,
            now=now,
            min_interval=self._config.refresh_min_interval,
        )
        if refused is not None:
            code = "unsupported_platform" if view.post.platform in UNSUPPORTED_PLATFORMS else "refresh_too_soon"
            raise RefreshRefused(refused.reason, code=code, retry_at=refused.retry_at)
        if not await self._store.claim_refresh(post_id, now, view.last_refresh_at):
            raise RefreshRefused("another refresh of this post has just started", code="refresh_too_soon", retry_at=now)
        with log_context(post_id=post_id, platform=view.post.platform.value, reason=PullReason.REFRESH.value):
            async with self._slots:
                attempt = await self._collect(view.post, now)
            await self._store_attempt(view.post, attempt, PullReason.REFRESH, now)
        if attempt.status is PullStatus.RATE_LIMITED:
            # The platform refused: give the caller's refresh back and say when the platform allows it.
            await self._store.claim_refresh(post_id, view.last_refresh_at, now)
            raise RefreshRefused(
                f"the {view.post.platform.value} insights API is rate limited: {attempt.note}",
                code="platform_rate_limited",
                retry_at=attempt.retry_at,
            )
        return await self.read(post_id, workspace_id)

    # ----- reads -------------------------------------------------------------------------------

    async def _visible(self, post_id: str, workspace_id: str) -> PostView:
        view = await self._store.get(post_id)
        if view is None or view.post.workspace_id != workspace_id:  # another tenant's post does not exist
            raise NotFound(f"no metrics for post {post_id}")
        return view

    async def read(self, post_id: str, workspace_id: str) -> Reading:
        view = await self._visible(post_id, workspace_id)
        fresh, age = domain.freshness(view.collected_at, self._clock.now(), self._config.stale_after)
        return Reading(view, fresh, age)

    async def history(self, post_id: str, workspace_id: str, limit: int, before_seq: int | None) -> list[Snapshot]:
        await self._visible(post_id, workspace_id)
        return await self._store.history(post_id, limit, before_seq)

    async def read_asset(self, asset_id: str, workspace_id: str) -> list[Reading]:
        readings = []
        for post_id in await self._store.asset_posts(asset_id):
            try:
                readings.append(await self.read(post_id, workspace_id))
            except NotFound:
                continue
        if not readings:
            raise NotFound(f"no metrics for asset {asset_id}")
        return sorted(readings, key=lambda r: r.view.post.platform.value)

    async def rollup(
        self,
        workspace_id: str,
        *,
        by: str,
        start: datetime,
        end: datetime,
        platform: str | None = None,
        account_id: str | None = None,
        campaign: str | None = None,
    ) -> list[Rollup]:
        """Sums of the latest values of the posts published in [start, end), grouped by `by`
        (campaign, account, platform or workspace)."""
        groups: dict[str | None, Rollup] = {}
        for entry in await self._store.rollup_entries(workspace_id, start, end):
            if (platform and entry.platform != platform) or (account_id and entry.account_id != account_id):
                continue
            if campaign is not None and entry.campaign != campaign:
                continue
            key = {
                "campaign": entry.campaign,
                "account": entry.account_id,
                "platform": entry.platform,
                "workspace": workspace_id,
            }[by]
            groups.setdefault(key, Rollup(key)).add(entry.metrics)
        return sorted(groups.values(), key=lambda r: (r.key is None, r.key or ""))

    # ----- the pull itself ---------------------------------------------------------------------

    async def _collect(self, post: TrackedPost, now: datetime) -> Attempt:  # noqa: PLR0911 - one return per outcome
        """Call the platform for one post: credentials, one token refresh on a 401, and every
        answer translated into a status. Never raises for what the platform says."""
        source = self._sources.get(post.platform)
        if source is None:
            return Attempt(PullStatus.UNSUPPORTED, note=f"{post.platform.value} has no post metrics")
        throttled_until = self._throttled.get((post.platform, post.account_id))
        if throttled_until is not None and throttled_until > now:
            note = f"the account's insight calls are throttled until {throttled_until.isoformat()}"
            return Attempt(PullStatus.RATE_LIMITED, retry_at=throttled_until, note=note)
        try:
            creds = await self._credentials.load(post.account_id)
        except CredentialsNotFound:
            return Attempt(PullStatus.NO_CREDENTIALS, note="no credentials are stored for this account")
        except UndecryptableCredentials:
            return Attempt(PullStatus.NO_CREDENTIALS, note="the account's credentials cannot be decrypted")
        if creds.status is not AccountStatus.ACTIVE:
            return Attempt(PullStatus.TOKEN_EXPIRED, note=f"the account is {creds.status.value}; reconnect it")
        ref = PostRef(post.post_id, post.remote_id, post.account_id, post.published_at)
        try:
            try:
                insights = await source.fetch(ref, creds.tokens.access_token.get_secret_value(), now)
            except TokenRejected:
                creds = await self._renewed(creds, source)
                insights = await source.fetch(ref, creds.tokens.access_token.get_secret_value(), now)
        except RateLimited as exc:
            retry_at = exc.retry_at if exc.retry_at and exc.retry_at > now else None
            retry_at = retry_at or now + self._config.policy.rate_limit_backoff
            self._throttled[(post.platform, post.account_id)] = retry_at
            log.warning("insights rate limited", retry_at=retry_at.isoformat())
            return Attempt(PullStatus.RATE_LIMITED, retry_at=retry_at, note=exc.message, error=exc.detail)
        except TokenRejected as exc:
            return Attempt(PullStatus.TOKEN_EXPIRED, note=exc.message, error=exc.detail)
        except PostGone as exc:
            return Attempt(PullStatus.DELETED, note=exc.message, error=exc.detail)
        except TransientError as exc:
            return Attempt(PullStatus.RETRYING, note=exc.message, error=exc.detail)
        except (PermanentError, InsightError) as exc:
            return Attempt(PullStatus.FAILED, note=exc.message, error=exc.detail)
        status = {"ok": PullStatus.OK, "too_old": PullStatus.TOO_OLD}.get(insights.status, PullStatus.NOT_ENOUGH_DATA)
        return Attempt(status, insights=insights, note=insights.note)

    async def _renewed(self, creds: StoredCredentials, source: InsightSource) -> StoredCredentials:
        """Fresh tokens after a 401: someone else's newer tokens if there are any, else a refresh
        stored with compare-and-set (a rotated refresh token must never be lost)."""
        current = await self._credentials.load(creds.account_id)
        if current.version != creds.version:
            return current
        tokens = await source.refresh(current.tokens)
        try:
            version = await self._credentials.replace_tokens(
                current.account_id, tokens, expected_version=current.version
            )
        except StaleCredentials:
            return await self._credentials.load(creds.account_id)
        log.info("access token refreshed", account_id=creds.account_id)
        return replace(current, tokens=tokens, version=version)

    async def _store_attempt(self, post: TrackedPost, attempt: Attempt, reason: PullReason, now: datetime) -> None:
        insights = attempt.insights
        record = PullRecord(
            post=post,
            attempted_at=now,
            reason=reason,
            status=attempt.status,
            note=attempt.note,
            metrics=domain.metrics_dict(insights.metrics) if insights else None,
            raw=insights.raw if insights else {},
            error=attempt.error,
        )
        await self._store.record(record)
        if attempt.status is PullStatus.OK and insights is not None:
            await self._sink.emit(
                [(METRICS_SYNCED, synced_event(post, insights.metrics, insights.raw, now, reason), post.post_id)]
            )
        log.info("insights pulled", status=attempt.status.value, note=attempt.note)


def synced_event(
    post: TrackedPost, metrics: CanonicalMetrics, raw: dict[str, Any], collected_at: datetime, reason: PullReason
) -> PostMetricsSynced:
    return PostMetricsSynced(
        # Derived, so a pull stored but re-emitted after a crash keeps its id.
        event_id=uuid5(_EVENT_NAMESPACE, f"{post.post_id}:{collected_at.isoformat()}:{reason.value}"),
        producer=PRODUCER,
        workspace_id=post.workspace_id,
        correlation_id=post.correlation_id,
        post_id=post.post_id,
        asset_id=post.asset_id,
        platform=post.platform,
        account_id=post.account_id,
        metrics=metrics,
        raw=raw,
        collected_at=collected_at,
        reason=reason.value,
    )
