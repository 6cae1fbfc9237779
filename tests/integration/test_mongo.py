"""The MongoDB-compatible server does what our stores rely on: unique indexes, compare-and-set
updates and upserts, through PyMongo's async API; and which indexes we build on it."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import AsyncMongoClient, ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import Document, IndexSpec, build_client, bulk_write_chunked, ensure_indexes, is_ferretdb
from shared.settings import MongoSettings

pytestmark = pytest.mark.integration


async def test_unique_index_rejects_a_second_document(db: AsyncDatabase[Document]) -> None:
    await ensure_indexes(db, [IndexSpec("attempts", [("post_id", 1), ("attempt", 1)], unique=True)])
    await db.attempts.insert_one({"post_id": "p1", "attempt": 1})
    with pytest.raises(DuplicateKeyError):
        await db.attempts.insert_one({"post_id": "p1", "attempt": 1})
    await db.attempts.insert_one({"post_id": "p1", "attempt": 2})
    assert await db.attempts.count_documents({"post_id": "p1"}) == 2


async def test_secondary_indexes_are_left_out_on_ferretdb_and_unique_ones_never(db: AsyncDatabase[Document]) -> None:
    # FerretDB's SQLite backend never reads a secondary index but maintains each on every write.
    await ensure_indexes(db, [IndexSpec("a", [("x", 1)], unique=True), IndexSpec("b", [("y", 1)])])
    assert "x_1" in await db.a.index_information()
    assert ("y_1" in await db.b.index_information()) is not await is_ferretdb(db)


async def test_conditional_update_lets_exactly_one_claimer_win(db: AsyncDatabase[Document]) -> None:
    await db.posts.insert_one({"_id": "p1", "state": "due", "version": 1})
    first = await db.posts.update_one(
        {"_id": "p1", "state": "due"}, {"$set": {"state": "publishing", "owner": "a"}, "$inc": {"version": 1}}
    )
    second = await db.posts.update_one(
        {"_id": "p1", "state": "due"}, {"$set": {"state": "publishing", "owner": "b"}, "$inc": {"version": 1}}
    )
    assert (first.modified_count, second.modified_count) == (1, 0)
    assert await db.posts.find_one({"_id": "p1"}) == {"_id": "p1", "state": "publishing", "version": 2, "owner": "a"}


async def test_upsert_inserts_once_then_updates(db: AsyncDatabase[Document]) -> None:
    for views in (10, 25):
        await db.latest.update_one({"_id": "p1"}, {"$set": {"views": views}, "$inc": {"syncs": 1}}, upsert=True)
    assert await db.latest.find_one({"_id": "p1"}) == {"_id": "p1", "views": 25, "syncs": 2}
    result = await db.latest.update_one({"_id": "p2"}, {"$setOnInsert": {"views": 0}}, upsert=True)
    assert result.upserted_id == "p2"


async def test_large_bulk_writes_are_chunked_so_the_server_keeps_answering(db: AsyncDatabase[Document]) -> None:
    await db.posts.insert_many([{"_id": f"p{i}", "state": "scheduled"} for i in range(300)])
    ops = [UpdateOne({"_id": f"p{i}", "state": "scheduled"}, {"$set": {"state": "due"}}) for i in range(300)]
    await bulk_write_chunked(db.posts, ops)
    assert await db.posts.count_documents({"state": "due"}) == 300


async def test_bulk_updates_by_id_keep_each_statements_own_filter_and_counts(db: AsyncDatabase[Document]) -> None:
    # Our FerretDB build reads the documents of such a bulk at once and writes them in one
    # transaction; each statement must still match on its whole filter, as on MongoDB.
    await db.posts.insert_many(
        [
            {"_id": "a", "rev": 1},
            {"_id": "b", "rev": 1},
            {"_id": "c", "rev": 1, "body": "old"},
            {"_id": "e", "rev": 1, "x": 1},
        ]
    )
    result = await db.posts.bulk_write(
        [
            UpdateOne({"_id": "a"}, {"$set": {"x": 1}}),
            UpdateOne({"_id": "b", "rev": 99}, {"$set": {"x": 1}}),  # a lost compare-and-set
            ReplaceOne({"_id": "c", "rev": 1}, {"rev": 2, "body": "new"}),
            UpdateOne({"_id": "d"}, {"$set": {"x": 1}}),  # no such document
            UpdateOne({"_id": "e"}, {"$set": {"x": 1}}),  # matched, nothing to change
        ],
        ordered=False,
    )
    assert (result.matched_count, result.modified_count) == (3, 2)
    assert await db.posts.find({}).sort("_id", 1).to_list() == [
        {"_id": "a", "rev": 1, "x": 1},
        {"_id": "b", "rev": 1},
        {"_id": "c", "rev": 2, "body": "new"},
        {"_id": "e", "rev": 1, "x": 1},
    ]


async def test_bulk_upserts_by_id_insert_the_missing_and_update_the_rest(db: AsyncDatabase[Document]) -> None:
    await db.windows.insert_one({"_id": "x:1", "stamps": [1.0]})
    result = await db.windows.bulk_write(
        [
            ReplaceOne({"_id": "x:1"}, {"stamps": [1.0, 2.0]}, upsert=True),
            ReplaceOne({"_id": "x:2"}, {"stamps": [3.0]}, upsert=True),
            UpdateOne({"_id": "x:3"}, {"$set": {"n": 1}, "$setOnInsert": {"new": True}}, upsert=True),
            UpdateOne({"_id": "x:4", "kind": "a"}, {"$inc": {"n": 1}}, upsert=True),
        ],
        ordered=False,
    )
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert result.upserted_ids == {1: "x:2", 2: "x:3", 3: "x:4"}
    assert await db.windows.find({}).sort("_id", 1).to_list() == [
        {"_id": "x:1", "stamps": [1.0, 2.0]},
        {"_id": "x:2", "stamps": [3.0]},
        {"_id": "x:3", "n": 1, "new": True},
        {"_id": "x:4", "kind": "a", "n": 1},
    ]


async def test_bulk_updates_of_one_document_apply_in_order(db: AsyncDatabase[Document]) -> None:
    await db.posts.insert_one({"_id": "a", "n": 0})
    result = await db.posts.bulk_write(
        [
            UpdateOne({"_id": "a"}, {"$inc": {"n": 1}}),
            UpdateOne({"_id": "a"}, {"$inc": {"n": 1}}),
            UpdateOne({"_id": "a", "n": 2}, {"$set": {"seen": True}}),  # sees both increments
            UpdateOne({"_id": "b"}, {"$inc": {"n": 1}}, upsert=True),
        ]
    )
    assert (result.matched_count, result.modified_count) == (3, 3)
    assert result.upserted_ids == {3: "b"}  # by the statement's index
    assert await db.posts.find({}).sort("_id", 1).to_list() == [
        {"_id": "a", "n": 2, "seen": True},
        {"_id": "b", "n": 1},
    ]


async def test_queries_without_a_filter_work(db: AsyncDatabase[Document]) -> None:
    # A regression test for our FerretDB build: aggregate with no $match reaches the backend
    # with no filter at all, and the _id narrowing must not trip over that.
    await db.posts.insert_many([{"_id": "p1", "views": 3}, {"_id": "p2", "views": 4}])
    totals = [d async for d in await db.posts.aggregate([{"$group": {"_id": None, "views": {"$sum": "$views"}}}])]
    assert totals == [{"_id": None, "views": 7}]
    assert await db.posts.count_documents({}) == 2
    assert await db.posts.find_one({"_id": "p2", "views": {"$gt": 3}}) == {"_id": "p2", "views": 4}
    assert await db.posts.find_one({"_id": "p2", "views": {"$gt": 4}}) is None


async def test_concurrent_compare_and_set_has_exactly_one_winner(
    mongo_settings: MongoSettings, db: AsyncDatabase[Document]
) -> None:
    # The publisher's claim on a (post, attempt) relies on this; FerretDB needed a fix for it.
    clients = [build_client(mongo_settings) for _ in range(6)]
    try:
        for trial in range(10):
            await db.claims.insert_one({"_id": f"k{trial}", "state": "due"})

            async def claim(client: AsyncMongoClient[Document], owner: int, key: str = f"k{trial}") -> int:
                result = await client[db.name].claims.update_one(
                    {"_id": key, "state": "due"}, {"$set": {"state": "claimed", "owner": owner}}
                )
                return result.modified_count

            winners = await asyncio.gather(*(claim(c, i) for i, c in enumerate(clients)))
            assert sum(winners) == 1, f"trial {trial}: {sum(winners)} claimers won"
    finally:
        for client in clients:
            await client.close()
