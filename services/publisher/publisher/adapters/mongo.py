"""The publisher's MongoDB collections.

- `attempts`: one claim per (post, attempt), `_id` "<post_id>#<attempt>", inserted once (the
  conditional claim: a second insert fails on the key), with the lease (owner, token, expiry)
  and the intermediate platform ids of the attempt (`checkpoint`).
- `outcomes`: the recorded outcome of an attempt that did not publish (same `_id`), with the
  exact events it emitted, so a redelivery emits them again and calls no platform.
- `published`: one document per post that went live (`_id` post_id): a later attempt of the same
  post finds it and never publishes again.
- `rate_windows`: one small document per account and platform (`_id` "<platform>:<account_id>"),
  the dirty ones written in bulk every flush; app-wide fixed-window counters ("app:..."). Not
  accounts grouped into shared documents: FerretDB rewrites a whole document on every update, and
  the 64 bucket documents per platform used before grew with the number of accounts.

Every hot-path write is by `_id` and coalesced across concurrent posts into bulk calls: inserts
(on FerretDB far cheaper than updates, and updates cheaper in bulk than one by one) and the
checkpoints; other updates happen only for lease renewals and take-overs. Every read is by
`_id` (the only indexed filter on FerretDB); nothing here needs a transaction or a TTL index.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any
from uuid import uuid4

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from publisher.domain import RateWindow, Verdict
from publisher.ports import Claim, ClaimState, History, LeaseLost, Outgoing, RecordedOutcome
from shared.events import ALL_EVENTS, decode, encode
from shared.logging import get_logger
from shared.mongo import BULK_CHUNK, DUPLICATE_KEY, Document, IndexSpec, bulk_write_chunked, update_each
from shared.tasks import stop_tasks

log = get_logger(__name__)

ATTEMPTS = "attempts"
OUTCOMES = "outcomes"
PUBLISHED = "published"
RATE_WINDOWS = "rate_windows"
INDEXES: list[IndexSpec] = []  # every query is by _id
_READ_CHUNK = 1000  # ids per `$in` read: FerretDB narrows up to 1,000 by its `_id` index
_HISTORY_DEPTH = 50


def attempt_key(post_id: str, attempt: int) -> str:
    return f"{post_id}#{attempt}"


class _Coalescer:
    """Writes from many concurrent callers become a few bulk calls: whatever queued while the
    previous call ran goes in the next one. Each caller awaits the answer for its own item."""

    def __init__(self, collection: AsyncCollection[Document], *, max_batch: int = 1000) -> None:
        self._collection = collection
        self._max_batch = max_batch
        self._queue: list[tuple[Any, asyncio.Future[bool]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _submit(self, item: Any) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"write-{self._collection.name}")
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                try:
                    answers = await self._write([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every waiting caller gets the failure
                    answers = [exc] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():
                        continue
                    if isinstance(answer, Exception):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)

    async def _write(self, items: list[Any]) -> list[bool | Exception]:
        raise NotImplementedError


class CoalescingInserter(_Coalescer):
    """Coalesced inserts by `_id`; `insert` answers False when the _id existed."""

    async def insert(self, doc: Document) -> bool:
        return await self._submit(doc)

    async def _write(self, items: list[Any]) -> list[bool | Exception]:
        answers: list[bool | Exception] = [True] * len(items)
        try:
            await self._collection.insert_many(items, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                duplicate = error.get("code") == DUPLICATE_KEY
                answers[error["index"]] = False if duplicate else RuntimeError(str(error.get("errmsg")))
        return answers


class CoalescingUpdater(_Coalescer):
    """Coalesced `update_one(filter, update)` calls; `update` answers whether its filter matched.

    One bulk write per batch costs FerretDB a fraction of the single updates it replaces (a
    checkpoint per post was most of the publisher's write commands). Every update here is an
    idempotent `$set`, as `update_each` needs, and a miss means a lease was lost, which is rare.
    """

    async def update(self, filter: Document, update: Document) -> bool:
        return await self._submit((filter, update))

    async def _write(self, items: list[Any]) -> list[bool | Exception]:
        return list(await update_each(self._collection, items))


def _events_to_doc(events: list[Outgoing]) -> list[dict[str, str]]:
    # JSON text, not nested documents: events may hold arrays of arrays, which FerretDB rejects.
    return [{"topic": topic, "key": key, "event": encode(event).decode()} for topic, event, key in events]


def _events_from_doc(items: list[dict[str, str]]) -> list[Outgoing]:
    return [(i["topic"], decode(i["event"].encode(), ALL_EVENTS), i["key"]) for i in items]


def _outcome_from(doc: Document) -> RecordedOutcome:
    return RecordedOutcome(
        post_id=doc["post_id"],
        attempt=int(doc["attempt"]),
        verdict=Verdict(doc["verdict"]),
        failures=int(doc.get("failures", 0)),
        events=_events_from_doc(doc.get("events") or []),
        remote_id=doc.get("remote_id"),
    )


class MongoLedger:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._attempts = db[ATTEMPTS]
        self._outcomes = db[OUTCOMES]
        self._published = db[PUBLISHED]
        self._claims = CoalescingInserter(self._attempts)
        self._outcome_writes = CoalescingInserter(self._outcomes)
        self._published_writes = CoalescingInserter(self._published)
        self._checkpoints = CoalescingUpdater(self._attempts, max_batch=BULK_CHUNK)

    async def close(self) -> None:
        for writer in (self._claims, self._outcome_writes, self._published_writes, self._checkpoints):
            await writer.close()

    async def claim(
        self, post_id: str, attempt: int, *, account_id: str, owner: str, lease_until: datetime, now: datetime
    ) -> Claim:
        key = attempt_key(post_id, attempt)
        doc = {
            "_id": key,
            "post_id": post_id,
            "attempt": attempt,
            "account_id": account_id,
            "owner": owner,
            "lease_token": uuid4().hex,
            "lease_until": lease_until,
            "claimed_at": now,
            "checkpoint": {},
        }
        while True:
            if await self._claims.insert(doc):
                return Claim(ClaimState.NEW, now, lease_until=lease_until)
            outcome = await self._outcome(post_id, attempt)
            if outcome is not None:
                return Claim(ClaimState.DONE, now, outcome=outcome)
            existing = await self._attempts.find_one({"_id": key})
            if existing is None:
                continue  # removed meanwhile (operator clean-up): claim afresh
            if existing["lease_until"] > now:
                return Claim(ClaimState.BUSY, existing["claimed_at"], lease_until=existing["lease_until"])
            token = uuid4().hex
            result = await self._attempts.update_one(
                {"_id": key, "lease_token": existing["lease_token"]},
                {"$set": {"owner": owner, "lease_token": token, "lease_until": lease_until}, "$inc": {"takeovers": 1}},
            )
            if result.modified_count == 1:
                log.warning(
                    "attempt taken over after its lease expired without an outcome",
                    post_id=post_id,
                    attempt=attempt,
                    previous_owner=existing["owner"],
                )
                return Claim(ClaimState.TAKEN_OVER, existing["claimed_at"], dict(existing.get("checkpoint") or {}))

    async def _outcome(self, post_id: str, attempt: int) -> RecordedOutcome | None:
        doc = await self._outcomes.find_one({"_id": attempt_key(post_id, attempt)})
        if doc is not None:
            return _outcome_from(doc)
        published = await self._published.find_one({"_id": post_id})
        return _outcome_from(published) if published is not None else None

    async def save_checkpoint(self, post_id: str, attempt: int, *, owner: str, ids: Mapping[str, str]) -> None:
        matched = await self._checkpoints.update(
            {"_id": attempt_key(post_id, attempt), "owner": owner},
            {"$set": {f"checkpoint.{k}": v for k, v in ids.items()}},
        )
        if not matched:
            raise LeaseLost(f"attempt {attempt} of {post_id} is no longer ours")

    async def renew(self, post_id: str, attempt: int, *, owner: str, lease_until: datetime) -> bool:
        result = await self._attempts.update_one(
            {"_id": attempt_key(post_id, attempt), "owner": owner}, {"$set": {"lease_until": lease_until}}
        )
        return result.matched_count == 1

    async def history(self, post_id: str, attempt: int) -> History:
        published = await self._published.find_one({"_id": post_id})
        if published is not None:
            return History(_outcome_from(published), int(published.get("failures", 0)))
        for earlier in range(attempt - 1, max(0, attempt - 1 - _HISTORY_DEPTH), -1):
            doc = await self._outcomes.find_one({"_id": attempt_key(post_id, earlier)}, {"verdict": 1, "failures": 1})
            if doc is None:
                continue
            if doc["verdict"] in (Verdict.FAILED.value, Verdict.UNCONFIRMED.value):
                return History(None, 0)  # a person asked for this retry: a fresh budget
            return History(None, int(doc.get("failures", 0)))
        return History(None, 0)

    async def earlier_checkpoint(self, post_id: str, attempt: int) -> Mapping[str, str]:
        if attempt <= 1:
            return {}
        earlier = attempt_key(post_id, attempt - 1)
        outcome = await self._outcomes.find_one({"_id": earlier}, {"verdict": 1})
        if outcome is not None and outcome["verdict"] == Verdict.FAILED.value:
            return {}
        doc = await self._attempts.find_one({"_id": earlier}, {"checkpoint": 1})
        return dict((doc or {}).get("checkpoint") or {})

    async def record(self, outcome: RecordedOutcome) -> None:
        doc: Document = {
            "post_id": outcome.post_id,
            "attempt": outcome.attempt,
            "verdict": outcome.verdict.value,
            "failures": outcome.failures,
            "events": _events_to_doc(outcome.events),
            "remote_id": outcome.remote_id,
            "recorded_at": datetime.now().astimezone(),
        }
        if outcome.verdict is Verdict.PUBLISHED:
            # The first publication of the post stays the record (a replayed attempt finds it).
            await self._published_writes.insert({"_id": outcome.post_id, **doc})
        else:
            await self._outcome_writes.insert({"_id": attempt_key(outcome.post_id, outcome.attempt), **doc})


def _window_from(doc: Document | None) -> RateWindow:
    saved: Document = doc or {}
    return RateWindow(
        stamps=[float(s) for s in saved.get("stamps", [])],
        blocked_until=float(saved.get("blocked_until", 0.0)),
        live_checked_at=float(saved.get("live_checked_at", 0.0)),
    )


def _window_id(platform: str, account_id: str) -> str:
    return f"{platform}:{account_id}"


class MongoRateStore:
    """Rate windows in memory for the accounts this instance owns, persisted every flush."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[RATE_WINDOWS]
        self._windows: dict[tuple[str, str], RateWindow] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._loading: dict[tuple[str, str], asyncio.Future[RateWindow]] = {}

    async def load(self, platform: str, account_id: str) -> RateWindow:
        key = (platform, account_id)
        window = self._windows.get(key)
        if window is not None:
            return window
        pending = self._loading.get(key)
        if pending is not None:
            return await pending
        future: asyncio.Future[RateWindow] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            doc = await self._collection.find_one({"_id": _window_id(platform, account_id)})
            window = self._windows.setdefault(key, _window_from(doc))
            future.set_result(window)
            return window
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiting loaders re-raise it themselves
            raise
        finally:
            del self._loading[key]

    async def preload(self, platform: str, account_ids: Collection[str]) -> None:
        """`$in` reads of the windows of the accounts not in memory yet."""
        missing = [a for a in account_ids if (platform, a) not in self._windows and (platform, a) not in self._loading]
        docs: dict[str, Document] = {}
        for start in range(0, len(missing), _READ_CHUNK):
            ids = [_window_id(platform, a) for a in missing[start : start + _READ_CHUNK]]
            docs.update({d["_id"]: d async for d in self._collection.find({"_id": {"$in": ids}})})
        for account_id in missing:
            if (platform, account_id) in self._windows:
                continue  # loaded, or changed, while we read
            self._windows[(platform, account_id)] = _window_from(docs.get(_window_id(platform, account_id)))

    def changed(self, platform: str, account_id: str, window: RateWindow) -> None:
        self._windows[(platform, account_id)] = window
        self._dirty.add((platform, account_id))

    async def flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        writes = []
        for platform, account_id in dirty:
            window = self._windows[(platform, account_id)]
            doc = {
                "stamps": window.stamps,
                "blocked_until": window.blocked_until,
                "live_checked_at": window.live_checked_at,
            }
            writes.append(ReplaceOne({"_id": _window_id(platform, account_id)}, doc, upsert=True))
        try:
            await bulk_write_chunked(self._collection, writes)
        except Exception:
            self._dirty |= dirty  # written next time
            raise

    async def forget(self, accounts: set[tuple[str, str]]) -> None:
        """Drop windows of accounts another instance now owns (after writing them)."""
        await self.flush()
        for key in accounts:
            self._windows.pop(key, None)

    async def take_app_slot(self, platform: str, limit: int, window_seconds: float, now: float) -> float | None:
        start = int(now // window_seconds * window_seconds)
        key = f"app:{platform}:{start}"
        doc = await self._collection.find_one_and_update(
            {"_id": key}, {"$inc": {"count": 1}}, upsert=True, return_document=True
        )
        if doc is not None and int(doc["count"]) > limit:
            await self._collection.update_one({"_id": key}, {"$inc": {"count": -1}})
            return start + window_seconds
        return None
