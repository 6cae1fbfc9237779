"""Rate windows on the real MongoDB-compatible server: reading a batch's accounts ahead."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from publisher.adapters.mongo import RATE_WINDOWS, MongoRateStore
from publisher.domain import RateWindow
from shared.mongo import Document

pytestmark = pytest.mark.integration


async def test_preload_reads_the_saved_windows_of_a_batch_of_accounts(db: AsyncDatabase[Document]) -> None:
    first = MongoRateStore(db)
    for n in range(40):
        first.changed("x", f"acc-{n}", RateWindow(stamps=[1000.0 + n], blocked_until=2000.0 + n))
    await first.flush()

    second = MongoRateStore(db)
    await second.preload("x", [f"acc-{n}" for n in range(40)] + ["new-account"])
    await db.drop_collection(RATE_WINDOWS)  # what follows must come from memory

    assert (await second.load("x", "acc-7")).stamps == [1007.0]
    assert (await second.load("x", "acc-39")).blocked_until == 2039.0
    assert (await second.load("x", "new-account")).stamps == []


async def test_preload_keeps_a_window_already_changed_in_memory(db: AsyncDatabase[Document]) -> None:
    first = MongoRateStore(db)
    first.changed("x", "acc", RateWindow(stamps=[1.0]))
    await first.flush()

    second = MongoRateStore(db)
    second.changed("x", "acc", RateWindow(stamps=[1.0, 2.0]))
    await second.preload("x", ["acc"])

    assert (await second.load("x", "acc")).stamps == [1.0, 2.0]


async def test_instances_flush_their_own_accounts_without_touching_others(db: AsyncDatabase[Document]) -> None:
    # After a rebalance two instances own different accounts of one platform; each flush writes
    # only its own accounts' windows, one small document each.
    first, second = MongoRateStore(db), MongoRateStore(db)
    first.changed("x", "acc-a", RateWindow(stamps=[1.0]))
    second.changed("x", "acc-b", RateWindow(stamps=[2.0], blocked_until=9.0))
    await first.flush()
    await second.flush()
    first.changed("x", "acc-a", RateWindow(stamps=[1.0, 3.0]))
    await first.flush()

    third = MongoRateStore(db)
    await third.preload("x", ["acc-a", "acc-b"])
    assert (await third.load("x", "acc-a")).stamps == [1.0, 3.0]
    assert (await third.load("x", "acc-b")).blocked_until == 9.0
    docs = await db[RATE_WINDOWS].find({}, {"_id": 1}).to_list()
    assert sorted(d["_id"] for d in docs) == ["x:acc-a", "x:acc-b"]
