"""Use cases of the publisher: publish one due post (claim, check, publish or reconcile, record,
emit) and verify an account. They load through ports, apply the domain rules and emit events.

The order for every attempt (DESIGN.md section 5): claim the attempt in the ledger; save every
intermediate platform id before the call that makes the post live; record the outcome; emit its
events. The caller commits the Kafka offset only after `publish_due` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from publisher import domain
from publisher.domain import Decision, Limit, RetryPolicy, Verdict, caption_problem, event_id
from publisher.instruments import PublisherMetrics
from publisher.platforms.base import (
    AmbiguousPublish,
    LiveQuota,
    NotLive,
    PlatformClient,
    PlatformError,
    Published,
    Session,
)
from publisher.ports import (
    AttemptStalled,
    Claim,
    ClaimState,
    Clock,
    EventSink,
    History,
    LeaseLost,
    Ledger,
    Outgoing,
    RateStore,
    RecordedOutcome,
    Vault,
)
from shared import topics
from shared.credentials import CredentialsError, CredentialsNotFound, StaleCredentials, StoredCredentials
from shared.events import (
    AccountStatus,
    AccountStatusChanged,
    AccountVerifyRequested,
    ErrorCode,
    Platform,
    PostDue,
    PostFailed,
    PostHeld,
    PostPublished,
    PostRetryScheduled,
)
from shared.logging import get_logger, redact, redact_text

log = get_logger(__name__)

PRODUCER = "publisher"
T = TypeVar("T")


# ------------------------------------------------------------------------------------------------
# Credentials: decrypt, refresh before expiry or once on a 401, store rotated tokens, report dead ones


class AccountHeld(Exception):
    """The account cannot publish until someone reconnects it; `announce` reports a status change,
    `raw` is the platform's error that said so (if the platform said it)."""

    def __init__(
        self,
        code: ErrorCode,
        reason: str,
        announce: list[Outgoing] | None = None,
        raw: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.announce = announce or []
        self.raw = raw


@dataclass(frozen=True)
class Keyed:
    """A session plus the credentials version it was built from (for compare-and-set refreshes)."""

    session: Session
    version: int
    workspace_id: str
    stored_status: AccountStatus


class Credentials:
    def __init__(
        self,
        vault: Vault,
        clock: Clock,
        clients: Mapping[Platform, PlatformClient],
        *,
        refresh_margins: Mapping[Platform, timedelta],
        cache_seconds: float = 60.0,
    ) -> None:
        self._vault = vault
        self._clock = clock
        self._clients = clients
        self._margins = refresh_margins
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, StoredCredentials]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self, account_id: str) -> None:
        self._cache.pop(account_id, None)

    async def prefetch(self, account_ids: Collection[str]) -> None:
        """Cache the credentials of these accounts that are not cached (or no longer fresh) with one
        read, so their posts do not each read their own. Missing ones are left to `session`."""
        now = self._clock.now().timestamp()
        stale = [a for a in account_ids if (c := self._cache.get(a)) is None or now - c[0] >= self._cache_seconds]
        if stale:
            for account_id, stored in (await self._vault.load_many(stale)).items():
                self._cache[account_id] = (now, stored)

    async def _load(self, account_id: str, *, fresh: bool) -> StoredCredentials:
        now = self._clock.now().timestamp()
        cached = self._cache.get(account_id)
        if not fresh and cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        stored = await self._vault.load(account_id)
        self._cache[account_id] = (now, stored)
        return stored

    async def session(self, platform: Platform, account_id: str, *, any_status: bool = False) -> Keyed:
        """A usable session; AccountHeld if the account is not active or its grant lacks the
        publishing scope (unless `any_status`)."""
        try:
            stored = await self._load(account_id, fresh=False)
            if _unusable(platform, stored) is not None:
                stored = await self._load(account_id, fresh=True)  # never hold on a stale cache
        except CredentialsNotFound:
            raise AccountHeld(ErrorCode.ACCOUNT_INACTIVE, "no credentials stored: connect the account") from None
        except CredentialsError as exc:
            raise AccountHeld(ErrorCode.ACCOUNT_INACTIVE, str(exc)) from None
        if not any_status and (held := _unusable(platform, stored)) is not None:
            raise held
        expires = stored.tokens.expires_at
        margin = self._margins.get(platform, timedelta(minutes=10))
        if expires is not None and expires - margin <= self._clock.now():
            try:
                stored = await self._refresh(platform, stored)
            except PlatformError as exc:
                if expires <= self._clock.now():
                    raise
                # The token endpoint is throttled or down, and the token still works: use it.
                log.warning(
                    "early token refresh failed; using the current token", account_id=account_id, error=str(exc)
                )
        return await self._keyed(platform, stored)

    async def recover(self, platform: Platform, keyed: Keyed) -> Keyed:
        """After a 401: use tokens someone else stored meanwhile, else refresh once."""
        account_id = keyed.session.account_id
        async with self._lock(account_id):
            stored = await self._load(account_id, fresh=True)
            if stored.version != keyed.version and stored.status is AccountStatus.ACTIVE:
                return await self._keyed(platform, stored)
            stored = await self._refresh_locked(platform, stored)
        return await self._keyed(platform, stored)

    async def _refresh(self, platform: Platform, stored: StoredCredentials) -> StoredCredentials:
        async with self._lock(stored.account_id):
            latest = await self._load(stored.account_id, fresh=True)
            if latest.version != stored.version:
                return latest  # refreshed by someone else while we waited
            return await self._refresh_locked(platform, latest)

    async def _refresh_locked(self, platform: Platform, stored: StoredCredentials) -> StoredCredentials:
        client = self._clients[platform]
        try:
            tokens = await client.refresh(stored.tokens)
        except PlatformError as exc:
            if exc.code is not ErrorCode.TOKEN_EXPIRED:
                raise
            raise AccountHeld(
                ErrorCode.TOKEN_EXPIRED,
                f"the token is dead and cannot be refreshed ({exc.message}): reconnect the account",
                await self.declare(platform, stored, AccountStatus.TOKEN_EXPIRED, exc.message),
                _platform_error(exc),
            ) from exc
        try:
            # Compare-and-set: a rotated refresh token is stored exactly once, never lost to a race.
            await self._vault.replace_tokens(stored.account_id, tokens, expected_version=stored.version)
        except StaleCredentials:
            log.info("tokens were replaced concurrently; using theirs", account_id=stored.account_id)
        return await self._load(stored.account_id, fresh=True)

    async def _keyed(self, platform: Platform, stored: StoredCredentials) -> Keyed:
        access = stored.tokens.access_token.get_secret_value()
        external_id = stored.external_id
        username = stored.profile.get("username")
        if not external_id:
            identity = await self._clients[platform].whoami(access, stored.profile)
            external_id, username = identity.external_id, identity.username or username
            await self._vault.set_identity(stored.account_id, external_id=external_id)
            self.forget(stored.account_id)
        session = Session(stored.account_id, external_id, access, stored.profile, username)
        return Keyed(session, stored.version, stored.workspace_id, stored.status)

    async def declare(
        self, platform: Platform, stored: StoredCredentials, status: AccountStatus, reason: str
    ) -> list[Outgoing]:
        """Mark the account; the one worker whose change wins announces it."""
        self.forget(stored.account_id)
        if not await self._vault.change_status(stored.account_id, status, expected=AccountStatus.ACTIVE):
            return []
        event = AccountStatusChanged(
            producer=PRODUCER,
            workspace_id=stored.workspace_id,
            correlation_id=stored.account_id,
            account_id=stored.account_id,
            platform=platform,
            status=status,
            previous_status=AccountStatus.ACTIVE,
            reason=reason,
        )
        return [(topics.ACCOUNTS_STATUS_CHANGED, event, stored.account_id)]

    async def stored(self, account_id: str) -> StoredCredentials:
        return await self._load(account_id, fresh=True)

    async def mark_active(self, platform: Platform, stored: StoredCredentials, reason: str) -> list[Outgoing]:
        self.forget(stored.account_id)
        if stored.status is AccountStatus.ACTIVE:
            return []
        if not await self._vault.change_status(stored.account_id, AccountStatus.ACTIVE, expected=stored.status):
            return []
        event = AccountStatusChanged(
            producer=PRODUCER,
            workspace_id=stored.workspace_id,
            correlation_id=stored.account_id,
            account_id=stored.account_id,
            platform=platform,
            status=AccountStatus.ACTIVE,
            previous_status=stored.status,
            reason=reason,
        )
        return [(topics.ACCOUNTS_STATUS_CHANGED, event, stored.account_id)]

    def _lock(self, account_id: str) -> asyncio.Lock:
        lock = self._locks.get(account_id)
        if lock is None:
            lock = self._locks[account_id] = asyncio.Lock()
        return lock


def _unusable(platform: Platform, stored: StoredCredentials) -> AccountHeld | None:
    """Why these credentials cannot publish until the account is reconnected, or None."""
    if stored.status is not AccountStatus.ACTIVE:
        code = ErrorCode.TOKEN_EXPIRED if stored.status is AccountStatus.TOKEN_EXPIRED else ErrorCode.ACCOUNT_INACTIVE
        return AccountHeld(code, f"the account is {stored.status.value}: reconnect it to publish")
    if why := domain.scope_problem(platform, stored.tokens.scopes):
        return AccountHeld(ErrorCode.ACCOUNT_INACTIVE, why)
    return None


# ------------------------------------------------------------------------------------------------
# Rate limits: persisted windows per account, the live quota where the platform reports one


@dataclass(frozen=True)
class Reservation:
    stamp: float


@dataclass(frozen=True)
class Deferred:
    until: datetime
    reason: str


class RateLimits:
    def __init__(
        self,
        store: RateStore,
        clock: Clock,
        *,
        limits: Mapping[Platform, Limit | None],
        app_limits: Mapping[Platform, Limit | None],
        live_every: timedelta = timedelta(minutes=10),
    ) -> None:
        self._store = store
        self._clock = clock
        self._limits = limits
        self._app_limits = app_limits
        self._live_every = live_every.total_seconds()

    async def preload(self, platform: Platform, account_ids: Collection[str]) -> None:
        await self._store.preload(platform.value, account_ids)

    async def reserve(self, platform: Platform, client: PlatformClient, session: Session) -> Reservation | Deferred:
        account_id = session.account_id
        window = await self._store.load(platform.value, account_id)
        limit = self._limits.get(platform)
        now = self._clock.now().timestamp()
        reset = window.available_at(limit, now)
        if reset is None or window.blocked_until <= now:
            quota = await self._live(client, session, window, now, local_full=reset is not None)
            if quota is not None:
                reset = window.apply_live(used=quota.used, limit=quota.limit, window=quota.window, now=now)
                if reset is None:
                    reset = window.available_at(None, now)
                self._store.changed(platform.value, account_id, window)
        if reset is not None:
            return Deferred(
                domain_time(reset), f"the account's publishing budget is used up until {domain_time(reset)}"
            )
        app = self._app_limits.get(platform)
        if app is not None:
            app_reset = await self._store.take_app_slot(platform.value, app.count, app.window.total_seconds(), now)
            if app_reset is not None:
                return Deferred(domain_time(app_reset), "the app's publishing budget is used up")
        window.record(now)
        self._store.changed(platform.value, account_id, window)
        return Reservation(now)

    async def _live(
        self, client: PlatformClient, session: Session, window: domain.RateWindow, now: float, *, local_full: bool
    ) -> LiveQuota | None:
        """The live value wins: read it when the local count says no, or when it is old."""
        if not local_full and now - window.live_checked_at < self._live_every:
            return None
        try:
            return await client.live_quota(session)
        except PlatformError as exc:
            log.info("live quota unavailable; using the local count", account_id=session.account_id, error=exc.message)
            return None

    async def settle(
        self,
        platform: Platform,
        account_id: str,
        reservation: Reservation,
        *,
        live: bool,
        quota: LiveQuota | None = None,
        blocked_until: datetime | None = None,
    ) -> None:
        window = await self._store.load(platform.value, account_id)
        now = self._clock.now().timestamp()
        if not live:
            window.release(reservation.stamp)
        if quota is not None and quota.limit > 0:
            reset = window.apply_live(used=quota.used, limit=quota.limit, window=quota.window, now=now)
            if reset is not None and quota.reset_at is not None:
                window.blocked_until = quota.reset_at.timestamp()
        if blocked_until is not None:
            window.block_until(blocked_until.timestamp())
        self._store.changed(platform.value, account_id, window)


def domain_time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _platform_error(exc: PlatformError) -> dict[str, Any] | None:
    """The platform's raw answer for a person to read, with secrets masked: analytics reads the
    topics, and a platform may echo a token, a client secret or an Authorization header back."""
    if exc.status is None and not exc.detail:
        return None
    raw: dict[str, Any] = redact({"status": exc.status, **exc.detail})
    return raw


# ------------------------------------------------------------------------------------------------
# Publishing one due post


class LedgerCheckpoint:
    """The Checkpoint a platform module writes to: every save is durable before it returns."""

    def __init__(self, ledger: Ledger, job: PostDue, owner: str, saved: Mapping[str, str]) -> None:
        self._ledger = ledger
        self._job = job
        self._owner = owner
        self._saved = dict(saved)

    @property
    def saved(self) -> Mapping[str, str]:
        return self._saved

    async def save(self, **ids: str) -> None:
        await self._ledger.save_checkpoint(self._job.post_id, self._job.attempt, owner=self._owner, ids=ids)
        self._saved.update(ids)


@dataclass(frozen=True)
class PublisherConfig:
    owner: str
    lease: timedelta = timedelta(minutes=2)
    # Longer than any honest attempt (processing polls time out at 5 minutes by default). A hung
    # attempt is abandoned, and whoever takes it over after the lease runs out reconciles it.
    attempt_timeout: timedelta = timedelta(minutes=15)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit_fallback: timedelta = timedelta(minutes=15)


class Publisher:
    def __init__(
        self,
        *,
        clients: Mapping[Platform, PlatformClient],
        ledger: Ledger,
        credentials: Credentials,
        limits: RateLimits,
        sink: EventSink,
        clock: Clock,
        metrics: PublisherMetrics,
        config: PublisherConfig,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.clients = clients
        self._ledger = ledger
        self._credentials = credentials
        self._limits = limits
        self._sink = sink
        self._clock = clock
        self._metrics = metrics
        self._config = config
        self._rand = rand
        self._renewals: set[asyncio.Task[None]] = set()

    # ----- the use case ----------------------------------------------------------------------

    async def warm(self, platform: Platform, account_ids: Collection[str]) -> None:
        """Read ahead what these accounts' posts are about to need (credentials, rate windows), a
        few reads for a whole fetched batch. Best effort: each post still loads what is missing."""
        try:
            await self._credentials.prefetch(account_ids)
            await self._limits.preload(platform, account_ids)
        except Exception:
            log.warning("reading ahead for a batch failed; each post reads its own", exc_info=True)

    async def publish_due(self, job: PostDue) -> None:
        """Publish one attempt of one post at most once; returns once its outcome is recorded and emitted."""
        claim = await self._claim(job)
        if claim.state is ClaimState.DONE:
            assert claim.outcome is not None
            await self._sink.emit(claim.outcome.events)  # a redelivery: the same events again
            self._metrics.replayed.labels(job.platform.value).inc()
            return
        history = await self._ledger.history(job.post_id, job.attempt) if job.attempt > 1 else History(None, 0)
        if history.published is not None:
            outcome = RecordedOutcome(
                job.post_id,
                job.attempt,
                Verdict.PUBLISHED,
                history.failures,
                history.published.events,
                history.published.remote_id,
            )
        else:
            deadline = asyncio.timeout(self._config.attempt_timeout.total_seconds())
            try:
                async with self._lease(job), deadline:
                    outcome = await self._attempt(job, claim, history)
            except TimeoutError as exc:
                if not deadline.expired():
                    raise
                raise AttemptStalled(
                    f"attempt {job.attempt} of {job.post_id} still running after {self._config.attempt_timeout}"
                ) from exc
        await self._ledger.record(outcome)
        await self._sink.emit(outcome.events)
        self._observe(job, outcome)

    async def _claim(self, job: PostDue) -> Claim:
        """Our claim on the attempt; waits while another live worker holds its lease."""
        while True:
            now = self._clock.now()
            claim = await self._ledger.claim(
                job.post_id,
                job.attempt,
                account_id=job.account_id,
                owner=self._config.owner,
                lease_until=now + self._config.lease,
                now=now,
            )
            if claim.state is not ClaimState.BUSY:
                return claim
            wait = (claim.lease_until - now).total_seconds() if claim.lease_until else 1.0
            log.info("attempt leased by another worker; waiting", post_id=job.post_id, attempt=job.attempt)
            await asyncio.sleep(min(max(wait, 0.2), 5.0))

    @contextlib.asynccontextmanager
    async def _lease(self, job: PostDue) -> AsyncIterator[None]:
        """Keep the lease while a slow attempt (processing, polling) runs."""

        # Stopped by a flag, not by cancelling: PyMongo can swallow a cancellation that lands during
        # the renewal's update and go on, and the attempt's lease was then renewed for ever (the
        # fault suite's stuck posts). A renewal in flight when the attempt ends just finishes.
        done = asyncio.Event()

        async def renew() -> None:
            every = self._config.lease.total_seconds() / 3
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), every)
                if done.is_set():
                    return
                until = self._clock.now() + self._config.lease
                if not await self._ledger.renew(job.post_id, job.attempt, owner=self._config.owner, lease_until=until):
                    log.warning("lease lost", post_id=job.post_id, attempt=job.attempt)
                    return

        task = asyncio.create_task(renew(), name=f"lease-{job.post_id}")
        self._renewals.add(task)  # a strong reference until it ends
        task.add_done_callback(self._renewals.discard)
        try:
            yield
        finally:
            done.set()

    async def _attempt(self, job: PostDue, claim: Claim, history: History) -> RecordedOutcome:  # noqa: PLR0911
        client = self.clients[job.platform]
        if job.format not in client.formats:
            offered = ", ".join(sorted(f.value for f in client.formats))
            return self._failed(
                job,
                history,
                ErrorCode.FORMAT_UNSUPPORTED,
                f"{job.platform.value} does not offer the {job.format.value} format (it offers {offered})",
            )
        if why := caption_problem(job.caption, client.caption_rules):
            return self._failed(job, history, ErrorCode.CONTENT_REJECTED, why)
        try:
            keyed = await self._credentials.session(job.platform, job.account_id)
        except AccountHeld as held:
            return self._held(job, history, held)
        except PlatformError as exc:  # whoami or refresh failed for a reason other than a dead token
            return self._failure(job, history, exc)
        if why := client.content_problem(job, keyed.session.profile):
            return self._failed(job, history, ErrorCode.CONTENT_REJECTED, why)
        checkpoint = LedgerCheckpoint(self._ledger, job, self._config.owner, claim.checkpoint)
        if claim.state is ClaimState.NEW and client.resumable and job.attempt > 1:
            earlier = await self._ledger.earlier_checkpoint(job.post_id, job.attempt)
            if carried := {k: v for k, v in earlier.items() if k in client.resumable}:
                log.info("continuing from the attempt before", post_id=job.post_id, ids=sorted(carried))
                await checkpoint.save(**carried)
        ambiguous = claim.state is ClaimState.TAKEN_OVER
        try:
            if ambiguous:
                # Tried before without an outcome: find out, never publish blindly.
                self._metrics.reconciled.labels(job.platform.value, "started").inc()
                reconciled = await self._reconcile(
                    job=job, client=client, keyed=keyed, checkpoint=checkpoint, since=claim.claimed_at, history=history
                )
                if reconciled is not None:
                    return reconciled
            return await self._publish(
                job=job, client=client, keyed=keyed, checkpoint=checkpoint, history=history, claimed_at=claim.claimed_at
            )
        except AccountHeld as held:
            return self._held(job, history, held)
        except LeaseLost:
            raise  # someone else owns the attempt now; the offset stays uncommitted

    async def _publish(
        self,
        *,
        job: PostDue,
        client: PlatformClient,
        keyed: Keyed,
        checkpoint: LedgerCheckpoint,
        history: History,
        claimed_at: datetime,
    ) -> RecordedOutcome:
        reservation = await self._limits.reserve(job.platform, client, keyed.session)
        if isinstance(reservation, Deferred):
            return self._deferred(job, history, reservation.until, reservation.reason)
        started = self._clock.now()
        try:
            published = await self._with_token(
                job.platform, keyed, lambda k: client.publish(job, k.session, checkpoint)
            )
        except AmbiguousPublish as exc:
            log.warning("publish answer lost; reconciling", post_id=job.post_id, attempt=job.attempt, error=str(exc))
            self._metrics.reconciled.labels(job.platform.value, "started").inc()
            outcome = await self._reconcile(
                job=job,
                client=client,
                keyed=keyed,
                checkpoint=checkpoint,
                since=claimed_at,
                history=history,
                allow_fresh=False,
            )
            assert outcome is not None
            return outcome
        except PlatformError as exc:
            await self._limits.settle(
                job.platform,
                job.account_id,
                reservation,
                live=False,
                quota=exc.quota,
                blocked_until=self._block_for(exc),
            )
            return await self._failure_with_status(job, history, exc, keyed)
        self._metrics.call_seconds.labels(job.platform.value).observe((self._clock.now() - started).total_seconds())
        await self._limits.settle(job.platform, job.account_id, reservation, live=True, quota=published.quota)
        return self._published(job, history, published)

    async def _reconcile(  # noqa: PLR0911 - one return per kind of answer
        self,
        *,
        job: PostDue,
        client: PlatformClient,
        keyed: Keyed,
        checkpoint: LedgerCheckpoint,
        since: datetime,
        history: History,
        allow_fresh: bool = True,
    ) -> RecordedOutcome | None:
        """The outcome of an attempt that may have gone live; None if it certainly did not (and
        `allow_fresh`: the caller may then publish it normally)."""
        try:
            published = await self._with_token(
                job.platform, keyed, lambda k: client.reconcile(job, k.session, checkpoint, since)
            )
        except NotLive as exc:
            self._metrics.reconciled.labels(job.platform.value, "not_live").inc()
            if allow_fresh:
                return None
            return self._failure(job, history, PlatformError(ErrorCode.NETWORK_ERROR, f"not published: {exc}"))
        except AmbiguousPublish as exc:
            self._metrics.reconciled.labels(job.platform.value, "unconfirmed").inc()
            return self._unconfirmed(job, history, f"reconciliation lost its answer too: {exc}")
        except PlatformError as exc:
            if exc.code is ErrorCode.PUBLISH_UNCONFIRMED:
                self._metrics.reconciled.labels(job.platform.value, "unconfirmed").inc()
                return self._unconfirmed(job, history, exc.message)
            if exc.code in (ErrorCode.NETWORK_ERROR, ErrorCode.UNKNOWN_ERROR, ErrorCode.RATE_LIMITED):
                # We could not look: still ambiguous, and never retried automatically.
                self._metrics.reconciled.labels(job.platform.value, "unconfirmed").inc()
                return self._unconfirmed(job, history, f"could not check the platform: {exc.message}", exc)
            return await self._failure_with_status(job, history, exc, keyed)
        self._metrics.reconciled.labels(job.platform.value, "published").inc()
        return self._published(job, history, published)

    async def _with_token(self, platform: Platform, keyed: Keyed, call: Callable[[Keyed], Awaitable[T]]) -> T:
        """One call; on a 401, new tokens (someone else's or refreshed) and the call once more."""
        try:
            return await call(keyed)
        except PlatformError as exc:
            if exc.code is not ErrorCode.TOKEN_EXPIRED:
                raise
            log.info("token refused; refreshing once", account_id=keyed.session.account_id)
        fresh = await self._credentials.recover(platform, keyed)
        return await call(fresh)

    def _block_for(self, exc: PlatformError) -> datetime | None:
        if exc.code is not ErrorCode.RATE_LIMITED:
            return None
        return exc.retry_at or self._clock.now() + self._config.rate_limit_fallback

    async def _failure_with_status(
        self, job: PostDue, history: History, exc: PlatformError, keyed: Keyed
    ) -> RecordedOutcome:
        """A refusal; a dead token or an inactive account also changes the account's status."""
        if exc.code in domain.HOLDING:
            status = exc.account_status or (
                AccountStatus.TOKEN_EXPIRED if exc.code is ErrorCode.TOKEN_EXPIRED else AccountStatus.REVOKED
            )
            stored = await self._credentials.stored(job.account_id)
            announce = await self._credentials.declare(job.platform, stored, status, exc.message)
            return self._held(job, history, AccountHeld(exc.code, exc.message, announce, _platform_error(exc)))
        return self._failure(job, history, exc)

    # ----- outcomes and their events -----------------------------------------------------------

    def _failure(self, job: PostDue, history: History, exc: PlatformError) -> RecordedOutcome:
        now = self._clock.now()
        retry_at = exc.retry_at
        if exc.code is ErrorCode.RATE_LIMITED and retry_at is None:
            retry_at = now + self._config.rate_limit_fallback
        decision = domain.decide(
            exc.code,
            failures_before=history.failures,
            now=now,
            policy=self._config.policy,
            rand=self._rand(),
            retry_at=retry_at,
        )
        return self._decided(job, decision, exc.message, _platform_error(exc))

    def _decided(self, job: PostDue, decision: Decision, message: str, raw: dict[str, Any] | None) -> RecordedOutcome:
        code = decision.error_code
        assert code is not None
        if decision.verdict is Verdict.RETRY:
            assert decision.next_attempt_at is not None
            event = PostRetryScheduled(
                **self._common(job, "retry"),
                error_code=code,
                error_message=redact_text(message),
                attempt=job.attempt,
                next_attempt=job.attempt + 1,
                next_attempt_at=decision.next_attempt_at,
                platform_error=raw,
            )
            return self._outcome(
                job, decision.verdict, decision.failures, [(topics.POSTS_RETRY_SCHEDULED, event, job.post_id)]
            )
        if decision.verdict is Verdict.HELD:
            held = AccountHeld(code, message, raw=raw)
            return self._held(job, History(None, decision.failures), held)
        failed = PostFailed(
            **self._common(job, "failed"),
            error_code=code,
            error_message=redact_text(message),
            platform_error=raw,
            attempts=job.attempt,
        )
        return self._outcome(job, decision.verdict, decision.failures, [(topics.POSTS_FAILED, failed, job.post_id)])

    def _failed(self, job: PostDue, history: History, code: ErrorCode, why: str) -> RecordedOutcome:
        decision = Decision(Verdict.FAILED, code, None, history.failures + 1)
        return self._decided(job, decision, why, None)

    def _unconfirmed(
        self, job: PostDue, history: History, why: str, exc: PlatformError | None = None
    ) -> RecordedOutcome:
        raw = _platform_error(exc) if exc is not None else None
        message = f"the post may or may not be live; a person has to check ({why})"
        return self._decided(
            job, Decision(Verdict.UNCONFIRMED, ErrorCode.PUBLISH_UNCONFIRMED, None, history.failures), message, raw
        )

    def _deferred(self, job: PostDue, history: History, until: datetime, reason: str) -> RecordedOutcome:
        decision = Decision(Verdict.RETRY, ErrorCode.RATE_LIMITED, max(until, self._clock.now()), history.failures)
        return self._decided(job, decision, reason, None)

    def _held(self, job: PostDue, history: History, held: AccountHeld) -> RecordedOutcome:
        event = PostHeld(
            **self._common(job, "held"),
            error_code=held.code,
            reason=redact_text(held.reason),
            attempt=job.attempt,
            platform_error=held.raw,
        )
        events: list[Outgoing] = [*held.announce, (topics.POSTS_HELD, event, job.post_id)]
        return self._outcome(job, Verdict.HELD, history.failures, events)

    def _published(self, job: PostDue, history: History, published: Published) -> RecordedOutcome:
        event = PostPublished(
            **self._common(job, "published"),
            remote_id=published.remote_id,
            permalink=published.permalink,
            published_at=published.published_at,
            attempt=job.attempt,
            campaign=job.campaign,
            visibility=published.visibility,
        )
        return self._outcome(
            job,
            Verdict.PUBLISHED,
            history.failures,
            [(topics.POSTS_PUBLISHED, event, job.post_id)],
            published.remote_id,
        )

    @staticmethod
    def _outcome(
        job: PostDue, verdict: Verdict, failures: int, events: list[Outgoing], remote_id: str | None = None
    ) -> RecordedOutcome:
        return RecordedOutcome(job.post_id, job.attempt, verdict, failures, events, remote_id)

    @staticmethod
    def _common(job: PostDue, kind: str) -> dict[str, Any]:
        return {
            "event_id": event_id(job.post_id, kind, job.attempt),
            "producer": PRODUCER,
            "workspace_id": job.workspace_id,
            "correlation_id": job.correlation_id,
            "post_id": job.post_id,
            "asset_id": job.asset_id,
            "platform": job.platform,
            "account_id": job.account_id,
        }

    def _observe(self, job: PostDue, outcome: RecordedOutcome) -> None:
        platform = job.platform.value
        metrics = self._metrics
        for _, event, _ in outcome.events:
            if isinstance(event, PostPublished):
                metrics.attempts.labels(platform, "published", "").inc()
                lag = (self._clock.now() - job.due_at).total_seconds()
                metrics.due_to_published.labels(platform).observe(max(0.0, lag))
            elif isinstance(event, PostFailed):
                metrics.attempts.labels(platform, "failed", event.error_code.value).inc()
            elif isinstance(event, PostRetryScheduled):
                metrics.attempts.labels(platform, "retry_scheduled", event.error_code.value).inc()
            elif isinstance(event, PostHeld):
                metrics.attempts.labels(platform, "held", event.error_code.value).inc()

    # ----- accounts ----------------------------------------------------------------------------

    async def verify_account(self, event: AccountVerifyRequested) -> None:
        """Check the account's token against the platform now; report a status that changed."""
        client = self.clients.get(event.platform)
        if client is None:
            return
        try:
            stored = await self._credentials.stored(event.account_id)
        except CredentialsNotFound:
            log.warning("verify requested for an account without credentials", account_id=event.account_id)
            return
        announce: list[Outgoing]
        try:
            keyed = await self._credentials.session(event.platform, event.account_id, any_status=True)
            await self._with_token(
                event.platform, keyed, lambda k: client.whoami(k.session.access_token, k.session.profile)
            )
            announce = await self._credentials.mark_active(event.platform, stored, "verified against the platform")
        except AccountHeld as held:
            announce = held.announce
            if not announce and stored.status is AccountStatus.ACTIVE:
                announce = await self._credentials.declare(
                    event.platform, stored, AccountStatus.TOKEN_EXPIRED, held.reason
                )
        except PlatformError as exc:
            if exc.code not in domain.HOLDING:
                raise  # the platform did not answer: try again (the command is redelivered)
            status = exc.account_status or AccountStatus.TOKEN_EXPIRED
            announce = await self._credentials.declare(event.platform, stored, status, exc.message)
        if announce:
            await self._sink.emit(announce)
        log.info("account verified", account_id=event.account_id, changed=bool(announce))
