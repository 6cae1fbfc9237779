"""Use cases of account snapshots: once a day, each connected account's followers and whatever
else its platform reports per account, stored as history with the latest values.

Accounts are learned from `accounts.status-changed.v1` (approval emits it when an account is
connected or reconnected; publisher when a token dies). That topic is keyed by account, so as
with posts the replica consuming partition k owns those accounts' plans, loads them when the
partition is assigned and keeps their due times in memory. Whether an account can be read right
now (status, tokens, platform-side id) is asked of the credentials at snapshot time, so a status
change needs no bookkeeping here: a disconnected account's snapshot records `token_expired` and
the next day tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from metrics import domain
from metrics.domain import Freshness, Plan, PullStatus
from metrics.handlers import CallFailed, MetricsConfig, NotFound, PlatformCalls, Timetable, access_token
from metrics.instruments import PullMetrics, build_pull_metrics
from metrics.platforms.base import AccountRef, AccountStats, InsightSource
from metrics.ports import AccountRecord, AccountStore, AccountView, Clock, Snapshot, TrackedAccount
from shared.events import AccountStatusChanged, Platform
from shared.kafka import Delivery
from shared.logging import get_logger, log_context

log = get_logger(__name__)

_ERROR_RETRY = timedelta(seconds=30)


@dataclass(frozen=True)
class AccountReading:
    view: AccountView
    freshness: Freshness
    age_seconds: float | None


class AccountSnapshots:
    def __init__(
        self,
        *,
        store: AccountStore,
        calls: PlatformCalls,
        sources: Mapping[Platform, InsightSource],
        clock: Clock,
        config: MetricsConfig,
        instruments: PullMetrics | None = None,
    ) -> None:
        self.timetable: Timetable[TrackedAccount] = Timetable()
        self.wakeup = asyncio.Event()
        self._store = store
        self._calls = calls
        self._sources = sources
        self._clock = clock
        self._config = config
        self._instruments = instruments or build_pull_metrics()
        self._slots = asyncio.Semaphore(config.max_concurrent_pulls)
        self._lock = asyncio.Lock()

    # ----- ownership ---------------------------------------------------------------------------

    async def assign(self, partitions: Collection[int]) -> None:
        accounts = await self._store.load_active(partitions)
        async with self._lock:
            self.timetable.assign(partitions, accounts)
        log.info("account partitions assigned", partitions=sorted(partitions), plans=len(accounts))
        self.wakeup.set()

    async def revoke(self, partitions: Collection[int]) -> None:
        async with self._lock:
            self.timetable.revoke(partitions)
        log.info("account partitions revoked", partitions=sorted(partitions))

    # ----- consumed events ---------------------------------------------------------------------

    async def on_status_changed(self, deliveries: Sequence[Delivery[AccountStatusChanged]]) -> None:
        """Plan the snapshots of accounts seen for the first time. Later status changes (and
        redeliveries) change nothing: the credentials say at snapshot time whether it can run."""
        now = self._clock.now()
        seen: dict[str, TrackedAccount] = {}
        for delivery in deliveries:
            event = delivery.event
            supported = event.platform in self._sources
            seen[event.account_id] = TrackedAccount(
                account_id=event.account_id,
                workspace_id=event.workspace_id,
                platform=event.platform,
                partition=delivery.partition,
                plan=domain.first_account_plan(now) if supported else None,
                status=PullStatus.PENDING if supported else PullStatus.UNSUPPORTED,
            )
        existing = await self._store.add(list(seen.values()))
        async with self._lock:
            for account_id, account in seen.items():
                if account_id not in existing and account.partition in self.timetable.partitions:
                    self.timetable.put(account)
        if len(existing) < len(seen):
            log.info("account snapshots planned", accounts=len(seen) - len(existing))
            self.wakeup.set()

    # ----- planned snapshots -------------------------------------------------------------------

    def seconds_until_next_due(self) -> float | None:
        next_ts = self.timetable.next_due()
        return None if next_ts is None else max(0.0, next_ts - self._clock.now().timestamp())

    async def run_due(self) -> int:
        """Take every snapshot that is due; returns how many ran."""
        ran = 0
        while True:
            async with self._lock:
                now = self._clock.now()
                due = self.timetable.pop_due(now, self._config.dispatch_chunk)
            if not due:
                return ran
            await asyncio.gather(*(self._snapshot(account, now) for account in due))
            ran += len(due)

    async def _snapshot(self, account: TrackedAccount, now: datetime) -> None:
        plan = account.plan
        assert plan is not None
        reason = domain.reason_for(plan, now, self._config.policy)
        with log_context(account_id=account.account_id, platform=account.platform.value, reason=reason.value):
            try:
                async with self._slots:
                    answer = await self._collect(account, now)
                if isinstance(answer, CallFailed):
                    failed: CallFailed | None = answer
                    record = AccountRecord(account, now, reason, answer.status, note=answer.note, error=answer.error)
                else:
                    failed = None
                    metrics = answer.metrics.as_dict()
                    record = AccountRecord(account, now, reason, PullStatus.OK, metrics=metrics, raw=answer.raw)
                updated = replace(account, plan=self._next_plan(account, plan, failed, now), status=record.status)
                await self._store.record(record)
                await self._store.save_plan(updated)
                status = record.status.value
                self._instruments.account_snapshots.labels(account.platform.value, reason.value, status).inc()
                log.info("account snapshot taken", status=status, note=record.note)
            except Exception:
                log.exception("account snapshot failed to be recorded; it stays planned and runs again")
                updated = replace(account, plan=replace(plan, due_at=now + _ERROR_RETRY))
            async with self._lock:
                if account.partition in self.timetable.partitions:
                    self.timetable.put(updated)
        self.wakeup.set()

    def _next_plan(self, account: TrackedAccount, plan: Plan, failed: CallFailed | None, now: datetime) -> Plan | None:
        policy = self._config.policy
        daily = domain.account_after_snapshot(account.account_id, plan, now, policy)
        if failed is None:
            return daily
        match failed.status:
            case PullStatus.RATE_LIMITED:
                return domain.after_rate_limit(plan, now, failed.retry_at, policy)
            case PullStatus.RETRYING:
                return domain.backoff(plan, now, policy) or daily
            case PullStatus.UNSUPPORTED:
                return None
            case _:
                return daily

    async def _collect(self, account: TrackedAccount, now: datetime) -> AccountStats | CallFailed:
        source = self._sources.get(account.platform)
        if source is None:
            return CallFailed(PullStatus.UNSUPPORTED, note=f"{account.platform.value} has no account metrics here")
        fetch_account = source.fetch_account
        return await self._calls.call(
            source,
            account.account_id,
            now,
            lambda creds: fetch_account(
                AccountRef(creds.account_id, creds.external_id, creds.profile), access_token(creds), now
            ),
        )

    # ----- reads -------------------------------------------------------------------------------

    async def _visible(self, account_id: str, workspace_id: str) -> AccountView:
        view = await self._store.get(account_id)
        if view is None or view.account.workspace_id != workspace_id:  # another tenant's account does not exist
            raise NotFound(f"no metrics for account {account_id}")
        return view

    async def read(self, account_id: str, workspace_id: str) -> AccountReading:
        view = await self._visible(account_id, workspace_id)
        fresh, age = domain.freshness(view.collected_at, self._clock.now(), self._config.stale_after)
        return AccountReading(view, fresh, age)

    async def history(self, account_id: str, workspace_id: str, limit: int, before_seq: int | None) -> list[Snapshot]:
        await self._visible(account_id, workspace_id)
        return await self._store.history(account_id, limit, before_seq)
