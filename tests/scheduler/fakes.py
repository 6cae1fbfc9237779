"""In-memory stand-ins for the scheduler's ports, for fast and exact handler tests."""

from __future__ import annotations

from collections.abc import Collection, Container, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from scheduler.domain import Post, State
from shared.events import Event


class FakeClock:
    def __init__(self, now: datetime = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class FakeStore:
    def __init__(self) -> None:
        self.posts: dict[str, Post] = {}
        self.dispatched: dict[tuple[str, int], datetime] = {}  # (post, attempt) -> when recorded
        self.dispatch_writes = 0

    async def load(self, partitions: Collection[int]) -> list[Post]:
        loaded = []
        for saved in self.posts.values():
            if saved.partition in partitions and saved.state in (State.SCHEDULED, State.DISPATCHED, State.HELD):
                handed_over = saved.state is State.SCHEDULED and (saved.post_id, saved.attempt) in self.dispatched
                loaded.append(replace(saved, state=State.DISPATCHED) if handed_over else saved)
        return loaded

    async def get(self, post_ids: Collection[str]) -> dict[str, Post]:
        return {p: self.posts[p] for p in post_ids if p in self.posts}

    async def add(self, posts: Sequence[Post]) -> set[str]:
        existing = {p.post_id for p in posts if p.post_id in self.posts}
        self.posts.update({p.post_id: p for p in posts if p.post_id not in existing})
        return existing

    async def save(self, posts: Sequence[Post]) -> None:
        self.posts.update({p.post_id: p for p in posts})

    async def record_dispatched(self, posts: Sequence[Post]) -> None:
        self.dispatch_writes += 1
        self.dispatched.update({(p.post_id, p.attempt): datetime.now(UTC) for p in posts})

    async def compact(
        self, partitions: Collection[int], written_before: datetime, in_flight: Container[tuple[str, int]]
    ) -> int:
        folded = 0
        old = [entry for entry, at in self.dispatched.items() if at < written_before]
        for post_id, attempt in old:
            post = self.posts.get(post_id) if (post_id, attempt) in in_flight else None
            if post and post.partition in partitions and post.state is State.SCHEDULED and post.attempt == attempt:
                self.posts[post_id] = replace(post, state=State.DISPATCHED)
                folded += 1
        for entry in old:
            del self.dispatched[entry]
        return folded


class FakeAccounts:
    def __init__(self) -> None:
        self.active: dict[str, datetime] = {}

    async def record_active(self, account_id: str, since: datetime) -> None:
        self.active[account_id] = since

    async def record_inactive(self, account_id: str, since: datetime) -> None:
        self.active.pop(account_id, None)

    async def active_since(self, account_ids: Collection[str]) -> dict[str, datetime]:
        return {a: s for a, s in self.active.items() if a in account_ids}


class FakeSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Event, str]] = []
        self.fail_next = False

    async def emit(self, events: Sequence[tuple[str, Event, str]]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker unavailable")
        self.sent.extend(events)

    def of(self, event_type: type[Event]) -> list[Event]:
        return [e for _, e, _ in self.sent if isinstance(e, event_type)]

    def clear(self) -> None:
        self.sent.clear()
