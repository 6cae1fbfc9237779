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
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar
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
    YieldPolicy,
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
from metrics.ports import (
    Clock,
    Credentials,
    EventSink,
    MetricsStore,
    PostView,
    PublishingBacklog,
    PullRecord,
    Snapshot,
    TrackedPost,
)
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
    yield_policy: YieldPolicy = field(default_factory=YieldPolicy)
    backlog_every: timedelta = timedelta(seconds=2)  # how often the backlog is read while pulls are due


@dataclass(frozen=True)
class CallFailed:
    """Why a platform call gave no answer, as the status of the post or account it was for."""

    status: PullStatus
    retry_at: datetime | None = None
    note: str | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class Attempt:
    """What calling the platform gave for one post (before anything is stored)."""

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


class Planned(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def plan(self) -> Plan | None: ...


P = TypeVar("P", bound=Planned)
R = TypeVar("R")


class Timetable(Generic[P]):
    """The plans this replica owns (of posts, or of accounts), in memory, with a heap of their due times."""

    def __init__(self) -> None:
        self._items: dict[str, P] = {}
        self._due = DueHeap(self._is_current)
        self.partitions: set[int] = set()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> P | None:
        return self._items.get(key)

    def put(self, item: P) -> None:
        if item.plan is None:
            self._items.pop(item.key, None)
            return
        self._items[item.key] = item
        self._due.push(item.plan.due_at.timestamp(), item.key)

    def assign(self, partitions: Iterable[int], items: Iterable[P]) -> None:
        self.partitions |= set(partitions)
        for item in items:
            self.put(item)

    def revoke(self, partitions: Iterable[int]) -> None:
        revoked = set(partitions)
        self.partitions -= revoked
        self._items = {k: p for k, p in self._items.items() if p.partition not in revoked}
        self._due.retain(self._items)

    def next_due(self) -> float | None:
        return self._due.next_due()

    def pop_due(self, now: datetime, limit: int) -> list[P]:
        """Take the due items out; each is put back with its next plan once it has run."""
        return [self._items.pop(key) for key in self._due.pop_due(now.timestamp(), limit)]

    def _is_current(self, ts: float, key: str) -> bool:
        item = self._items.get(key)
        return item is not None and item.plan is not None and item.plan.due_at.timestamp() == ts


class PlatformCalls:
    """One account's call to its platform: the credentials, one token refresh on a 401, and every
    answer that is not a result translated into a status. Shared by post pulls and account
    snapshots, so a throttled account waits for both without calling."""

    def __init__(self, credentials: Credentials, policy: PullPolicy) -> None:
        self._credentials = credentials
        self._policy = policy
        # Accounts a platform throttled, until when: their other calls wait without calling.
        self._throttled: dict[tuple[Platform, str], datetime] = {}
        self._read_ahead: dict[str, StoredCredentials] = {}

    @contextlib.asynccontextmanager
    async def reading_ahead(self, account_ids: Collection[str]) -> AsyncIterator[None]:
        """Calls inside use credentials read for all these accounts at once (one read, not one per
        call), and read their own again afterwards, so nothing is reused past one round of pulls."""
        try:
            self._read_ahead = await self._credentials.load_many(account_ids)
        except Exception:
            log.warning("reading credentials ahead failed; each call reads its own", exc_info=True)
        try:
            yield
        finally:
            self._read_ahead = {}

    async def call(  # noqa: PLR0911 - one return per outcome
        self,
        source: InsightSource,
        account_id: str,
        now: datetime,
        request: Callable[[StoredCredentials], Awaitable[R]],
    ) -> R | CallFailed:
        """`request(credentials)`'s result, or why there is none. Never raises for what the platform says."""
        throttled_until = self._throttled.get((source.platform, account_id))
        if throttled_until is not None and throttled_until > now:
            note = f"the account's insight calls are throttled until {throttled_until.isoformat()}"
            return CallFailed(PullStatus.RATE_LIMITED, retry_at=throttled_until, note=note)
        try:
            creds = self._read_ahead.get(account_id) or await self._credentials.load(account_id)
        except CredentialsNotFound:
            return CallFailed(PullStatus.NO_CREDENTIALS, note="no credentials are stored for this account")
        except UndecryptableCredentials:
            return CallFailed(PullStatus.NO_CREDENTIALS, note="the account's credentials cannot be decrypted")
        if creds.status is not AccountStatus.ACTIVE:
            return CallFailed(PullStatus.TOKEN_EXPIRED, note=f"the account is {creds.status.value}; reconnect it")
        try:
            try:
                return await request(creds)
            except TokenRejected:
                return await request(await self._renewed(creds, source))
        except RateLimited as exc:
            retry_at = exc.retry_at if exc.retry_at and exc.retry_at > now else None
            retry_at = retry_at or now + self._policy.rate_limit_backoff
            self._throttled[(source.platform, account_id)] = retry_at
            log.warning("insights rate limited", retry_at=retry_at.isoformat())
            return CallFailed(PullStatus.RATE_LIMITED, retry_at=retry_at, note=exc.message, error=exc.detail)
        except TokenRejected as exc:
            return CallFailed(PullStatus.TOKEN_EXPIRED, note=exc.message, error=exc.detail)
        except PostGone as exc:
            return CallFailed(PullStatus.DELETED, note=exc.message, error=exc.detail)
        except TransientError as exc:
            return CallFailed(PullStatus.RETRYING, note=exc.message, error=exc.detail)
        except (PermanentError, InsightError) as exc:
            return CallFailed(PullStatus.FAILED, note=exc.message, error=exc.detail)

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


def access_token(creds: StoredCredentials) -> str:
    return creds.tokens.access_token.get_secret_value()


class MetricsService:
    def __init__(
        self,
        *,
        store: MetricsStore,
        calls: PlatformCalls,
        sources: Mapping[Platform, InsightSource],
        sink: EventSink,
        clock: Clock,
        config: MetricsConfig,
        instruments: PullMetrics | None = None,
        backlog: PublishingBacklog | None = None,
    ) -> None:
        self.timetable: Timetable[TrackedPost] = Timetable()
        self._instruments = instruments or build_pull_metrics()
        self.wakeup = asyncio.Event()
        self._store = store
        self._calls = calls
        self._sources = sources
        self._sink = sink
        self._clock = clock
        self._config = config
        self._slots = asyncio.Semaphore(config.max_concurrent_pulls)
        self._lock = asyncio.Lock()
        self._backlog = backlog
        self._backlog_read_at: datetime | None = None
        self._backlog_over_since: datetime | None = None
        self._waiting = False

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
                plan=domain.first_plan(self._spread_key(event), event.published_at, policy) if supported else None,
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
        if next_ts is None:
            return None
        if self._waiting and self._backlog_read_at is not None:
            next_ts = max(next_ts, (self._backlog_read_at + self._config.backlog_every).timestamp())
        return max(0.0, next_ts - self._clock.now().timestamp())

    async def run_due(self) -> int:
        """Run every planned pull that is due, unless they wait for publishing; returns how many ran."""
        ran = 0
        while True:
            if await self._wait_for_publishing():
                return ran
            async with self._lock:
                now = self._clock.now()
                due = self.timetable.pop_due(now, self._config.dispatch_chunk)
            if not due:
                return ran
            async with self._calls.reading_ahead({post.account_id for post in due}):
                answers = await asyncio.gather(*(self._call(batch, now) for batch in self._batches(due)))
            await self._finish([answer for batch in answers for answer in batch], now)
            ran += len(due)

    async def _wait_for_publishing(self) -> bool:
        """Whether planned pulls wait for the publishers' backlog now; it is read at most every
        `backlog_every`, and only while pulls are due."""
        now = self._clock.now()
        if self._backlog is None or (
            self._backlog_read_at is not None and now - self._backlog_read_at < self._config.backlog_every
        ):
            return self._waiting
        self._backlog_read_at = now
        backlog = await self._backlog.unfinished()
        policy = self._config.yield_policy
        self._backlog_over_since = domain.backlog_since(backlog, self._backlog_over_since, now, policy)
        waiting = domain.pulls_wait(self._backlog_over_since, now, policy)
        if waiting != self._waiting:
            log.info("planned pulls wait for publishing" if waiting else "planned pulls resume", backlog=backlog)
        self._waiting = waiting
        self._instruments.publishing_backlog.set(-1 if backlog is None else backlog)
        self._instruments.waiting_for_publishing.set(int(waiting))
        return waiting

    def _batch_size(self, platform: Platform) -> int:
        source = self._sources.get(platform)
        return source.batch_size if source is not None else 1

    def _spread_key(self, post: TrackedPost | PostPublished) -> str:
        """Where one call pulls many posts, an account's nightly pulls share one slot (and call)."""
        return post.account_id if self._batch_size(post.platform) > 1 else post.post_id

    def _batches(self, due: Sequence[TrackedPost]) -> list[list[TrackedPost]]:
        """Due posts of one account, up to what one call of their platform takes (one, mostly)."""
        by_account: dict[tuple[Platform, str], list[TrackedPost]] = {}
        for post in due:
            by_account.setdefault((post.platform, post.account_id), []).append(post)
        batches: list[list[TrackedPost]] = []
        for (platform, _), posts in by_account.items():
            size = self._batch_size(platform)
            batches.extend(posts[start : start + size] for start in range(0, len(posts), size))
        return batches

    async def _call(self, posts: Sequence[TrackedPost], now: datetime) -> list[tuple[TrackedPost, Attempt | None]]:
        """One platform call for `posts`; no attempt where it failed unexpectedly."""
        attempts: Sequence[Attempt | None]
        try:
            async with self._slots:
                started = time.perf_counter()
                attempts = await self._collect(posts, now)
                self._instruments.pull_seconds.labels(posts[0].platform.value).observe(time.perf_counter() - started)
        except Exception:
            log.exception("insight call failed unexpectedly; its pulls stay planned and run again")
            attempts = [None] * len(posts)
        return list(zip(posts, attempts, strict=True))

    async def _finish(self, answers: Sequence[tuple[TrackedPost, Attempt | None]], now: datetime) -> None:
        """Store a round of pulls with each post's next plan, in bulk. A pull without an outcome,
        or whose outcome could not be stored, runs again soon."""
        kept = {
            post.post_id: replace(post, plan=replace(post.plan, due_at=now + _ERROR_RETRY))
            for post, _ in answers
            if post.plan is not None
        }
        pulls: list[_Pull] = []
        for post, attempt in answers:
            if attempt is None or post.plan is None:
                continue
            reason = domain.reason_for(post.plan, now, self._config.policy)
            with log_context(post_id=post.post_id, platform=post.platform.value, reason=reason.value):
                planned = replace(post, plan=self._next_plan(post, post.plan, attempt, now), status=attempt.status)
            pulls.append(_Pull(post, attempt, reason, planned))
        try:
            stored = await self._store_pulls(pulls, now)
        except Exception:
            log.exception("pulls failed to be recorded; they stay planned and run again", pulls=len(pulls))
        else:
            for pull in pulls:
                assert pull.planned is not None
                post_id = pull.post.post_id
                kept[post_id] = replace(pull.planned, snapshots=stored.get(post_id, pull.post.snapshots))
                self._instruments.pulls.labels(
                    pull.post.platform.value, pull.reason.value, pull.attempt.status.value
                ).inc()
        async with self._lock:
            for post in kept.values():
                if post.partition in self.timetable.partitions:
                    self.timetable.put(post)
            self._instruments.planned.set(len(self.timetable))
        self.wakeup.set()

    def _next_plan(self, post: TrackedPost, plan: Plan, attempt: Attempt, now: datetime) -> Plan | None:
        policy = self._config.policy
        key = self._spread_key(post)
        match attempt.status:
            case PullStatus.RATE_LIMITED:
                return domain.after_rate_limit(plan, now, attempt.retry_at, policy)
            case PullStatus.RETRYING:
                next_plan, gave_up = domain.after_failure(key, post.published_at, plan, now, policy)
                if gave_up:
                    log.warning("pull given up after its tries; the next planned pull still runs")
                return next_plan
            case PullStatus.DELETED | PullStatus.UNSUPPORTED:
                return None
            case _:
                return domain.after_pull(key, post.published_at, plan, now, policy)

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
                (attempt,) = await self._collect([view.post], now)
            await self._store_pulls([_Pull(view.post, attempt, PullReason.REFRESH, None)], now)
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

    async def _collect(self, posts: Sequence[TrackedPost], now: datetime) -> list[Attempt]:
        """Call the platform once for these posts of one account; an attempt per post, in order."""
        first = posts[0]
        source = self._sources.get(first.platform)
        if source is None:
            return [Attempt(PullStatus.UNSUPPORTED, note=f"{first.platform.value} has no post metrics")] * len(posts)
        refs = [PostRef(p.post_id, p.remote_id, p.account_id, p.published_at) for p in posts]
        fetch_many = source.fetch_many
        answer = await self._calls.call(
            source, first.account_id, now, lambda creds: fetch_many(refs, access_token(creds), now)
        )
        if isinstance(answer, CallFailed):
            failed = Attempt(answer.status, retry_at=answer.retry_at, note=answer.note, error=answer.error)
            return [failed] * len(posts)
        return [self._attempt(insights) for insights in answer]

    @staticmethod
    def _attempt(insights: Insights) -> Attempt:
        status = {"ok": PullStatus.OK, "too_old": PullStatus.TOO_OLD}.get(insights.status, PullStatus.NOT_ENOUGH_DATA)
        return Attempt(status, insights=insights, note=insights.note)

    async def _store_pulls(self, pulls: Sequence[_Pull], now: datetime) -> dict[str, int]:
        """Store pulls and announce the values they got; returns each stored snapshot's number."""
        records = [(pull.record(now), pull.planned) for pull in pulls]
        stored = await self._store.record_pulls(records)
        await self._sink.emit(
            [
                (
                    METRICS_SYNCED,
                    synced_event(p.post, p.attempt.insights.metrics, p.attempt.insights.raw, now, p.reason),
                    p.post.post_id,
                )
                for p in pulls
                if p.attempt.status is PullStatus.OK and p.attempt.insights is not None
            ]
        )
        for pull in pulls:
            log.info(
                "insights pulled",
                post_id=pull.post.post_id,
                platform=pull.post.platform.value,
                reason=pull.reason.value,
                status=pull.attempt.status.value,
                note=pull.attempt.note,
            )
        return stored


@dataclass(frozen=True)
class _Pull:
    """One post's pull, before it is stored: what the platform gave and the plan after it."""

    post: TrackedPost
    attempt: Attempt
    reason: PullReason
    planned: TrackedPost | None  # None: a refresh, the plan stays as it is

    def record(self, now: datetime) -> PullRecord:
        insights = self.attempt.insights
        return PullRecord(
            post=self.post,
            attempted_at=now,
            reason=self.reason,
            status=self.attempt.status,
            note=self.attempt.note,
            metrics=domain.metrics_dict(insights.metrics) if insights else None,
            raw=insights.raw if insights else {},
            error=self.attempt.error,
        )


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
