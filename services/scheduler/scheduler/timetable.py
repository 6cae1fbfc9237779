"""The posts this replica owns, in memory, with a timer heap of their due times.

Ownership follows Kafka: a replica holds exactly the posts of the partitions assigned to it.
MongoDB is the durable copy; this is the fast one the timer reads from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

from scheduler.domain import Post, State
from shared.timers import DueHeap


class Timetable:
    def __init__(self) -> None:
        self._posts: dict[str, Post] = {}
        self._due = DueHeap(self._is_current)
        self.partitions: set[int] = set()
        # Kept as posts come and go: the gauges read it after every batch, and counting a
        # replica's 100,000 posts each time took a third of the scheduler's CPU under load.
        self._counts: Counter[State] = Counter()

    def __len__(self) -> int:
        return len(self._posts)

    def __iter__(self) -> Iterator[Post]:
        return iter(self._posts.values())

    def get(self, post_id: str) -> Post | None:
        return self._posts.get(post_id)

    def put(self, post: Post) -> None:
        self.remove(post.post_id)
        self._posts[post.post_id] = post
        self._counts[post.state] += 1
        if post.state is State.SCHEDULED:
            self._due.push(post.due_at.timestamp(), post.post_id)

    def remove(self, post_id: str) -> None:
        if (post := self._posts.pop(post_id, None)) is not None:
            self._counts[post.state] -= 1

    def assign(self, partitions: Iterable[int], posts: Iterable[Post]) -> None:
        self.partitions |= set(partitions)
        for post in posts:
            self.put(post)

    def revoke(self, partitions: Iterable[int]) -> None:
        revoked = set(partitions)
        self.partitions -= revoked
        self._posts = {pid: p for pid, p in self._posts.items() if p.partition not in revoked}
        self._counts = Counter(p.state for p in self._posts.values())
        self._due.retain(self._posts)

    def next_due(self) -> float | None:
        """Timestamp of the earliest scheduled post."""
        return self._due.next_due()

    def pop_due(self, now: datetime, limit: int) -> list[Post]:
        """Up to `limit` scheduled posts due at or before `now`, earliest first."""
        return [self._posts[post_id] for post_id in self._due.pop_due(now.timestamp(), limit)]

    def handed_over(self) -> set[tuple[str, int]]:
        """(post, attempt) of every post handed to its publisher and not finished yet."""
        return {(p.post_id, p.attempt) for p in self._posts.values() if p.state is State.DISPATCHED}

    def held_posts(self) -> list[Post]:
        return [p for p in self._posts.values() if p.state is State.HELD]

    def counts(self) -> Counter[State]:
        return +self._counts  # a copy without the states that dropped to zero

    def _is_current(self, ts: float, post_id: str) -> bool:
        post = self._posts.get(post_id)
        return post is not None and post.state is State.SCHEDULED and post.due_at.timestamp() == ts
