"""The posts this replica owns, in memory, with a timer heap of their due times.

Ownership follows Kafka: a replica holds exactly the posts of the partitions assigned to it.
MongoDB is the durable copy; this is the fast one the timer reads from.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

from scheduler.domain import Post, State


class Timetable:
    def __init__(self) -> None:
        self._posts: dict[str, Post] = {}
        # (due timestamp, post_id): entries go stale when a post changes; they are skipped on pop.
        self._heap: list[tuple[float, str]] = []
        self.partitions: set[int] = set()

    def __len__(self) -> int:
        return len(self._posts)

    def __iter__(self) -> Iterator[Post]:
        return iter(self._posts.values())

    def get(self, post_id: str) -> Post | None:
        return self._posts.get(post_id)

    def put(self, post: Post) -> None:
        self._posts[post.post_id] = post
        if post.state is State.SCHEDULED:
            heapq.heappush(self._heap, (post.due_at.timestamp(), post.post_id))

    def remove(self, post_id: str) -> None:
        self._posts.pop(post_id, None)

    def assign(self, partitions: Iterable[int], posts: Iterable[Post]) -> None:
        self.partitions |= set(partitions)
        for post in posts:
            self.put(post)

    def revoke(self, partitions: Iterable[int]) -> None:
        revoked = set(partitions)
        self.partitions -= revoked
        self._posts = {pid: p for pid, p in self._posts.items() if p.partition not in revoked}
        self._heap = [(ts, pid) for ts, pid in self._heap if pid in self._posts]
        heapq.heapify(self._heap)

    def next_due(self) -> float | None:
        """Timestamp of the earliest scheduled post, dropping stale heap entries on the way."""
        while self._heap:
            ts, post_id = self._heap[0]
            if self._is_current(ts, post_id):
                return ts
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: datetime, limit: int) -> list[Post]:
        """Up to `limit` scheduled posts due at or before `now`, earliest first."""
        cutoff = now.timestamp()
        due: list[Post] = []
        while self._heap and self._heap[0][0] <= cutoff and len(due) < limit:
            ts, post_id = heapq.heappop(self._heap)
            if self._is_current(ts, post_id):
                due.append(self._posts[post_id])
        return due

    def held_posts(self) -> list[Post]:
        return [p for p in self._posts.values() if p.state is State.HELD]

    def counts(self) -> Counter[State]:
        return Counter(p.state for p in self._posts.values())

    def _is_current(self, ts: float, post_id: str) -> bool:
        post = self._posts.get(post_id)
        return post is not None and post.state is State.SCHEDULED and post.due_at.timestamp() == ts
