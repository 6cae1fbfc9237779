"""What the scheduler's use cases depend on; adapters implement these for MongoDB and Kafka,
tests with in-memory fakes."""

from __future__ import annotations

from collections.abc import Collection, Container, Sequence
from datetime import datetime
from typing import Protocol

from scheduler.domain import Post
from shared.events import Event


class Clock(Protocol):
    def now(self) -> datetime: ...


class PostStore(Protocol):
    async def load(self, partitions: Collection[int]) -> list[Post]:
        """Every post of these partitions that is not finished, as last saved or dispatched."""
        ...

    async def get(self, post_ids: Collection[str]) -> dict[str, Post]:
        """The saved posts among `post_ids`, finished ones included."""
        ...

    async def add(self, posts: Sequence[Post]) -> set[str]:
        """Insert new posts; returns the ids that already existed (and were left untouched)."""
        ...

    async def save(self, posts: Sequence[Post]) -> None:
        """Persist changed posts."""
        ...

    async def record_dispatched(self, posts: Sequence[Post]) -> None:
        """Remember, cheaply and durably, that these attempts were handed to the publisher."""
        ...

    async def compact(
        self, partitions: Collection[int], written_before: datetime, in_flight: Container[tuple[str, int]]
    ) -> int:
        """Fold dispatch records written before `written_before` into the posts, for the
        (post, attempt) pairs still `in_flight`, and drop the records; returns how many records
        were folded."""
        ...


class AccountStatuses(Protocol):
    async def record_active(self, account_id: str, since: datetime) -> None: ...

    async def record_inactive(self, account_id: str, since: datetime) -> None: ...

    async def active_since(self, account_ids: Collection[str]) -> dict[str, datetime]:
        """For each account that is active now: since when."""
        ...


class EventSink(Protocol):
    async def emit(self, events: Sequence[tuple[str, Event, str]]) -> None:
        """Publish (topic, event, key) items and wait until the broker has them all."""
        ...
