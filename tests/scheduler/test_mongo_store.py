"""The scheduler's MongoDB store on the real MongoDB-compatible server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from scheduler.adapters.mongo import INDEXES, MongoAccountStatuses, MongoPostStore
from scheduler.domain import Post, State
from shared.mongo import Document, ensure_indexes

pytestmark = pytest.mark.integration

DUE = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def post(post_id: str, partition: int = 0, **changes: object) -> Post:
    base = Post(
        post_id=post_id,
        partition=partition,
        account_id="a",
        state=State.SCHEDULED,
        due_at=DUE,
        attempt=1,
        content={"platform": "x", "caption": "hi"},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_posts_round_trip_and_duplicates_are_reported(db: AsyncDatabase[Document]) -> None:
    await ensure_indexes(db, INDEXES)
    store = MongoPostStore(db)
    assert await store.add([post("p1"), post("p2", partition=1)]) == set()
    assert await store.add([post("p1"), post("p3")]) == {"p1"}
    loaded = {p.post_id: p for p in await store.load({0})}
    assert set(loaded) == {"p1", "p3"}
    assert loaded["p1"] == post("p1")
    assert loaded["p1"].content == {"platform": "x", "caption": "hi"}
    assert (await store.get(["p2", "nope"]))["p2"].partition == 1


async def test_dispatch_records_survive_a_restart_and_compaction_folds_them(db: AsyncDatabase[Document]) -> None:
    store = MongoPostStore(db)
    await store.add([post("p1"), post("p2"), post("p3"), post("p4"), post("p5")])
    handed_over = ["p1", "p2", "p4", "p5"]
    await store.record_dispatched([post(p, state=State.DISPATCHED) for p in handed_over])
    # p2 moved on (published) before compaction ran: compaction must not drag it back. p4's
    # attempt 1 failed and attempt 2 is scheduled: handing over attempt 1 says nothing of it.
    await store.save([post("p2", state=State.PUBLISHED), post("p4", attempt=2)])
    states = {p.post_id: p.state for p in await store.load({0})}
    assert states == {"p1": State.DISPATCHED, "p3": State.SCHEDULED, "p4": State.SCHEDULED, "p5": State.DISPATCHED}
    written = datetime.now(UTC)
    # What the owner still has in flight; p5 is not (its later state is saved in real life, left
    # out here to show that compaction writes only the attempts in flight).
    in_flight = {("p1", 1), ("p2", 1), ("p4", 1)}
    assert await store.compact({0}, written - timedelta(minutes=5), in_flight) == 0  # too young: kept
    assert await db.dispatches.count_documents({}) == 1
    assert await store.compact({0}, written + timedelta(seconds=1), in_flight) == 1
    assert await db.dispatches.count_documents({}) == 0
    raw = {d["_id"]: d["state"] async for d in db.posts.find({})}
    assert raw == {"p1": "dispatched", "p2": "published", "p3": "scheduled", "p4": "scheduled", "p5": "scheduled"}


async def test_account_status_keeps_the_newest(db: AsyncDatabase[Document]) -> None:
    accounts = MongoAccountStatuses(db)
    later, earlier = datetime(2026, 11, 22, 13, tzinfo=UTC), datetime(2026, 11, 22, 11, tzinfo=UTC)
    await accounts.record_active("a", later)
    await accounts.record_inactive("a", earlier)  # replayed, older: ignored
    assert await accounts.active_since(["a", "b"]) == {"a": later}
