"""MongoDB access through PyMongo's async API (AsyncMongoClient; Motor is past end of life)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.settings import MongoSettings

Document = dict[str, Any]
_WriteOp = InsertOne[Document] | UpdateOne | UpdateMany | ReplaceOne[Document] | DeleteOne

DUPLICATE_KEY = 11000  # the server's error code for an insert whose `_id` (or unique key) exists

# Unpatched FerretDB v1.24 holds one SQLite connection per update statement of a command until
# the command ends, from a pool of 100: a bulk write of 100 statements deadlocks the server. The
# local stack's build no longer does (write_updates_after_reading in deploy/local/stack.py), but
# chunks of 50 keep every bulk write safe on an unpatched FerretDB too; real MongoDB takes 100,000.
BULK_CHUNK = 50


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    keys: Sequence[tuple[str, int]]
    unique: bool = False
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def build_client(settings: MongoSettings) -> AsyncMongoClient[Document]:
    # tz_aware so datetimes read back are UTC-aware, like the ones we write.
    return AsyncMongoClient(
        settings.url.get_secret_value(),
        tz_aware=True,
        serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
        socketTimeoutMS=settings.socket_timeout_ms,
        appname="socialpub",
    )


async def is_ferretdb(db: AsyncDatabase[Document]) -> bool:
    """Whether the server is FerretDB (the local stack) rather than MongoDB."""
    return "ferretdbVersion" in await db.client.admin.command("buildInfo")


async def ensure_indexes(db: AsyncDatabase[Document], specs: Iterable[IndexSpec]) -> None:
    """Create the indexes: on MongoDB all of them, on FerretDB v1 (the local stack) only the unique
    ones. Its SQLite backend looks documents up by `_id` alone and never reads a secondary index,
    yet keeps each one up to date on every insert and update."""
    ferretdb = await is_ferretdb(db)
    for spec in specs:
        if ferretdb and not spec.unique:
            continue
        options = dict(spec.options)
        if spec.name:
            options["name"] = spec.name
        await db[spec.collection].create_index(list(spec.keys), unique=spec.unique, **options)


async def bulk_write_chunked(
    collection: AsyncCollection[Document], operations: Sequence[_WriteOp], *, ordered: bool = False
) -> None:
    """Run `operations` as bulk writes of at most BULK_CHUNK statements each."""
    for start in range(0, len(operations), BULK_CHUNK):
        await collection.bulk_write(list(operations[start : start + BULK_CHUNK]), ordered=ordered)


async def update_each(
    collection: AsyncCollection[Document], updates: Sequence[tuple[Document, Document]]
) -> list[bool]:
    """Run each `(filter, update)` as an `update_one`, in bulk writes of BULK_CHUNK; whether each
    filter matched.

    A bulk answer counts matches but does not say which statement matched, so a chunk with a miss
    is replayed one update at a time. Only for idempotent updates (`$set`, `$max`): the replay
    applies the matched ones again."""
    matched: list[bool] = []
    for start in range(0, len(updates), BULK_CHUNK):
        chunk = updates[start : start + BULK_CHUNK]
        result = await collection.bulk_write([UpdateOne(f, u) for f, u in chunk], ordered=False)
        if result.matched_count == len(chunk):
            matched += [True] * len(chunk)
        else:
            matched += [(await collection.update_one(f, u)).matched_count == 1 for f, u in chunk]
    return matched


async def insert_new(
    collection: AsyncCollection[Document], docs: Sequence[Document], *, chunk: int = BULK_CHUNK
) -> list[int]:
    """Insert the documents whose `_id` is not there yet; the indexes (in `docs`) of those that were.

    Where a write only has to happen once, this costs the local FerretDB an eighth of an upsert
    with `$setOnInsert`, which reads each document before writing it."""
    existing: list[int] = []
    for start in range(0, len(docs), chunk):
        try:
            await collection.insert_many(list(docs[start : start + chunk]), ordered=False)
        except BulkWriteError as exc:
            errors: list[dict[str, Any]] = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            existing += [start + int(e["index"]) for e in errors]
    return existing


async def ping(client: AsyncMongoClient[Document]) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False
    return True
