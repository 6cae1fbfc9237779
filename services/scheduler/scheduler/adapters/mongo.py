"""The scheduler's MongoDB collections.

`posts` holds one document per post, written by the replica that owns the post's partition.
`dispatches` is an append-only record of handed-over attempts: one small insert per dispatch
batch instead of one update per post, so a burst of tens of thousands of due posts is recorded
in milliseconds; `compact` later folds it into `posts`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection, Container, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from scheduler.domain import Post, State
from shared.mongo import Document, IndexSpec, bulk_write_chunked, insert_new

POSTS = "posts"
DISPATCHES = "dispatches"
ACCOUNTS = "account_status"
_INSERT_CHUNK = 1000
_DISPATCH_ENTRIES_PER_DOC = 5000
_COMPACT_CHUNK = 100  # posts per update; FerretDB narrows `_id` `$in` of up to 1,000 by its index
_DELETE_CHUNK = 100  # dispatch records per delete, found by `_id` `$in` (indexed on FerretDB too)
_COMPACT_PAUSE_SECONDS = 0.01

INDEXES = [
    IndexSpec(POSTS, [("partition", 1), ("state", 1)]),
    IndexSpec(DISPATCHES, [("partition", 1)]),
]
_OPEN_STATES = [State.SCHEDULED.value, State.DISPATCHED.value, State.HELD.value]


def _entry(post_id: str, attempt: int) -> str:
    # A string, not a [post_id, attempt] pair: FerretDB 1.x rejects nested arrays.
    return f"{attempt}:{post_id}"


def _parse_entry(entry: str) -> tuple[str, int]:
    attempt, post_id = entry.split(":", 1)
    return post_id, int(attempt)


def _to_doc(post: Post) -> Document:
    return {
        "_id": post.post_id,
        "partition": post.partition,
        "account_id": post.account_id,
        "state": post.state.value,
        "due_at": post.due_at,
        "attempt": post.attempt,
        "content": post.content,
        "held_at": post.held_at,
        "reason": post.reason,
        "last_command": post.last_command,
        "updated_at": datetime.now(UTC),
    }


def _from_doc(doc: Document) -> Post:
    return Post(
        post_id=doc["_id"],
        partition=doc["partition"],
        account_id=doc["account_id"],
        state=State(doc["state"]),
        due_at=doc["due_at"],
        attempt=doc["attempt"],
        content=doc["content"],
        held_at=doc.get("held_at"),
        reason=doc.get("reason"),
        last_command=doc.get("last_command"),
    )


class MongoPostStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._posts = db[POSTS]
        self._dispatches = db[DISPATCHES]

    async def load(self, partitions: Collection[int]) -> list[Post]:
        if not partitions:
            return []
        query = {"partition": {"$in": list(partitions)}}
        # Dispatch records first, posts second: compaction updates posts before it deletes
        # records, so in this order no handed-over attempt can be missed by both reads.
        handed_over = {entry async for r in self._dispatches.find(query) for entry in map(_parse_entry, r["entries"])}
        posts = [_from_doc(d) async for d in self._posts.find({**query, "state": {"$in": _OPEN_STATES}})]
        return [
            replace(p, state=State.DISPATCHED)
            if p.state is State.SCHEDULED and (p.post_id, p.attempt) in handed_over
            else p
            for p in posts
        ]

    async def get(self, post_ids: Collection[str]) -> dict[str, Post]:
        found: dict[str, Post] = {}
        for post_id in post_ids:  # by _id: indexed everywhere, unlike $in on FerretDB
            doc = await self._posts.find_one({"_id": post_id})
            if doc is not None:
                found[post_id] = _from_doc(doc)
        return found

    async def add(self, posts: Sequence[Post]) -> set[str]:
        existing = await insert_new(self._posts, [_to_doc(p) for p in posts], chunk=_INSERT_CHUNK)
        return {posts[i].post_id for i in existing}

    async def save(self, posts: Sequence[Post]) -> None:
        await bulk_write_chunked(self._posts, [ReplaceOne({"_id": p.post_id}, _to_doc(p), upsert=True) for p in posts])

    async def record_dispatched(self, posts: Sequence[Post]) -> None:
        by_partition: dict[int, list[str]] = defaultdict(list)
        for post in posts:
            by_partition[post.partition].append(_entry(post.post_id, post.attempt))
        docs = [
            {
                "_id": uuid4().hex,
                "partition": partition,
                "entries": entries[i : i + _DISPATCH_ENTRIES_PER_DOC],
                "at": datetime.now(UTC),
            }
            for partition, entries in by_partition.items()
            for i in range(0, len(entries), _DISPATCH_ENTRIES_PER_DOC)
        ]
        if docs:
            await self._dispatches.insert_many(docs, ordered=False)

    async def compact(
        self, partitions: Collection[int], written_before: datetime, in_flight: Container[tuple[str, int]]
    ) -> int:
        """Fold dispatch records written before `written_before` into the posts they name, then
        drop them.

        Needs no lock: it only moves a post from scheduled to dispatched for the very attempt
        that was handed over, so a newer state saved meanwhile is never overwritten. Only the
        attempts still `in_flight` are written: any other has been saved in a later state since.
        """
        if not partitions:
            return 0
        old_enough = {"partition": {"$in": list(partitions)}, "at": {"$lt": written_before}}
        records = [r async for r in self._dispatches.find(old_enough)]
        by_attempt: dict[int, list[str]] = defaultdict(list)
        for record in records:
            for post_id, attempt in map(_parse_entry, record["entries"]):
                if (post_id, attempt) in in_flight:
                    by_attempt[attempt].append(post_id)
        # One update of many posts by `_id` `$in`, not one statement per post: the local FerretDB
        # reads them through its `_id` index in one query, at a third to a half of the cost per
        # post. Paced chunks: each update command holds the database's write lock, and the
        # timer's dispatch records must not queue behind thousands.
        for attempt, post_ids in by_attempt.items():
            for start in range(0, len(post_ids), _COMPACT_CHUNK):
                await self._posts.update_many(
                    {
                        "_id": {"$in": post_ids[start : start + _COMPACT_CHUNK]},
                        "state": State.SCHEDULED.value,
                        "attempt": attempt,
                    },
                    {"$set": {"state": State.DISPATCHED.value}},
                )
                await asyncio.sleep(_COMPACT_PAUSE_SECONDS)
        ids = [record["_id"] for record in records]
        for start in range(0, len(ids), _DELETE_CHUNK):
            await self._dispatches.delete_many({"_id": {"$in": ids[start : start + _DELETE_CHUNK]}})
        return len(records)


class MongoAccountStatuses:
    """The latest known status of each account, kept by every replica from the status topic."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._accounts = db[ACCOUNTS]

    async def record_active(self, account_id: str, since: datetime) -> None:
        await self._record(account_id, active=True, since=since)

    async def record_inactive(self, account_id: str, since: datetime) -> None:
        await self._record(account_id, active=False, since=since)

    async def _record(self, account_id: str, *, active: bool, since: datetime) -> None:
        current = await self._accounts.find_one({"_id": account_id})
        if current is not None and current["since"] >= since:
            return  # an older event, replayed or reordered: the newer status stands
        await self._accounts.replace_one({"_id": account_id}, {"active": active, "since": since}, upsert=True)

    async def active_since(self, account_ids: Collection[str]) -> dict[str, datetime]:
        found: dict[str, datetime] = {}
        for account_id in account_ids:  # lookups by _id: the one query every MongoDB-compatible server indexes
            doc = await self._accounts.find_one({"_id": account_id})
            if doc is not None and doc["active"]:
                found[account_id] = doc["since"]
        return found
