"""In-memory adapters for handler tests: the same semantics as the MongoDB ones, no I/O."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from publisher.domain import RateWindow, Verdict
from publisher.ports import Claim, ClaimState, History, LeaseLost, Outgoing, RecordedOutcome
from shared.credentials import CredentialsNotFound, OAuthTokens, StaleCredentials, StoredCredentials
from shared.events import AccountStatus


class FakeClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class ListSink:
    events: list[Outgoing] = field(default_factory=list)

    async def emit(self, events: Sequence[Outgoing]) -> None:
        self.events.extend(events)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for _, e, _ in self.events if isinstance(e, kind)]


@dataclass
class _Attempt:
    owner: str
    lease_until: datetime
    claimed_at: datetime
    checkpoint: dict[str, str] = field(default_factory=dict)


class MemoryLedger:
    def __init__(self) -> None:
        self.attempts: dict[tuple[str, int], _Attempt] = {}
        self.outcomes: dict[tuple[str, int], RecordedOutcome] = {}
        self.published: dict[str, RecordedOutcome] = {}

    async def claim(
        self, post_id: str, attempt: int, *, account_id: str, owner: str, lease_until: datetime, now: datetime
    ) -> Claim:
        key = (post_id, attempt)
        existing = self.attempts.get(key)
        if existing is None:
            self.attempts[key] = _Attempt(owner, lease_until, now)
            return Claim(ClaimState.NEW, now, lease_until=lease_until)
        done = self.outcomes.get(key) or self.published.get(post_id)
        if done is not None:
            return Claim(ClaimState.DONE, now, outcome=done)
        if existing.lease_until > now:
            return Claim(ClaimState.BUSY, existing.claimed_at, lease_until=existing.lease_until)
        existing.owner, existing.lease_until = owner, lease_until
        return Claim(ClaimState.TAKEN_OVER, existing.claimed_at, dict(existing.checkpoint))

    async def save_checkpoint(self, post_id: str, attempt: int, *, owner: str, ids: Mapping[str, str]) -> None:
        existing = self.attempts[(post_id, attempt)]
        if existing.owner != owner:
            raise LeaseLost(post_id)
        existing.checkpoint.update(ids)

    async def renew(self, post_id: str, attempt: int, *, owner: str, lease_until: datetime) -> bool:
        existing = self.attempts[(post_id, attempt)]
        if existing.owner != owner:
            return False
        existing.lease_until = lease_until
        return True

    async def history(self, post_id: str, attempt: int) -> History:
        if post_id in self.published:
            return History(self.published[post_id], self.published[post_id].failures)
        for earlier in range(attempt - 1, 0, -1):
            outcome = self.outcomes.get((post_id, earlier))
            if outcome is not None:
                if outcome.verdict in (Verdict.FAILED, Verdict.UNCONFIRMED):
                    return History(None, 0)
                return History(None, outcome.failures)
        return History(None, 0)

    async def earlier_checkpoint(self, post_id: str, attempt: int) -> Mapping[str, str]:
        earlier = self.outcomes.get((post_id, attempt - 1))
        if earlier is not None and earlier.verdict is Verdict.FAILED:
            return {}
        previous = self.attempts.get((post_id, attempt - 1))
        return dict(previous.checkpoint) if previous else {}

    async def record(self, outcome: RecordedOutcome) -> None:
        if outcome.verdict is Verdict.PUBLISHED:
            self.published.setdefault(outcome.post_id, outcome)
        else:
            self.outcomes.setdefault((outcome.post_id, outcome.attempt), outcome)


class MemoryRateStore:
    def __init__(self) -> None:
        self.windows: dict[tuple[str, str], RateWindow] = {}
        self.app: dict[str, int] = {}

    async def load(self, platform: str, account_id: str) -> RateWindow:
        return self.windows.setdefault((platform, account_id), RateWindow())

    async def preload(self, platform: str, account_ids: Collection[str]) -> None:
        for account_id in account_ids:
            await self.load(platform, account_id)

    def changed(self, platform: str, account_id: str, window: RateWindow) -> None:
        self.windows[(platform, account_id)] = window

    async def flush(self) -> None:
        return None

    async def take_app_slot(self, platform: str, limit: int, window_seconds: float, now: float) -> float | None:
        start = int(now // window_seconds * window_seconds)
        key = f"{platform}:{start}"
        if self.app.get(key, 0) >= limit:
            return start + window_seconds
        self.app[key] = self.app.get(key, 0) + 1
        return None


class MemoryVault:
    def __init__(self) -> None:
        self.records: dict[str, StoredCredentials] = {}

    def put(
        self,
        account_id: str,
        platform: str,
        tokens: OAuthTokens,
        *,
        external_id: str | None,
        profile: dict[str, Any] | None = None,
        status: AccountStatus = AccountStatus.ACTIVE,
    ) -> None:
        version = self.records[account_id].version + 1 if account_id in self.records else 1
        self.records[account_id] = StoredCredentials(
            account_id, "ws", platform, tokens, status, version, datetime.now(UTC), external_id, profile or {}
        )

    async def load(self, account_id: str) -> StoredCredentials:
        if account_id not in self.records:
            raise CredentialsNotFound(account_id)
        return self.records[account_id]

    async def load_many(self, account_ids: Collection[str]) -> dict[str, StoredCredentials]:
        return {a: self.records[a] for a in account_ids if a in self.records}

    async def replace_tokens(self, account_id: str, tokens: OAuthTokens, *, expected_version: int) -> int:
        current = await self.load(account_id)
        if current.version != expected_version:
            raise StaleCredentials(account_id, expected_version)
        self.records[account_id] = replace(current, tokens=tokens, version=current.version + 1)
        return current.version + 1

    async def change_status(self, account_id: str, status: AccountStatus, *, expected: AccountStatus) -> bool:
        current = await self.load(account_id)
        if current.status is not expected:
            return False
        self.records[account_id] = replace(current, status=status, version=current.version)
        return True

    async def set_identity(self, account_id: str, *, external_id: str, profile: dict[str, Any] | None = None) -> None:
        current = await self.load(account_id)
        self.records[account_id] = replace(current, external_id=external_id, profile=profile or current.profile)
