"""The metrics service's MongoDB collections, laid out so every hot read is by `_id` (the one
lookup FerretDB indexes) and nothing needs more than plain updates.

- `posts`: one document per published post (`_id` = post_id): identity, next planned pull,
  deferred refresh, status of the last pull, latest values with their collection time.
- `snapshots`: every answer a pull got (time series), `_id` = `<post_id>:<seq>` with seq counted
  on the post, so a post's history is read by `_id` without any index.
- `rollup_entries`: one small document per post (`_id` = post_id): workspace, platform, account,
  campaign, publishing time and latest values. A rollup reads the workspace's entries in the time
  range (indexed on MongoDB; a scan of this lean collection on FerretDB) and sums in Python: no
  `$group` accumulators needed. One document per post, not per day: FerretDB rewrites a whole
  document on every update, so a day document listing thousands of posts cost 50 ms per update
  at 1,000 posts and grew without bound.
- `assets`: per asset, its posts (`posts.<post_id>` = post_id), for the per-asset view.
- `accounts`: one document per connected account (`_id` = account_id): next daily snapshot,
  status of the last one, latest values with their collection time.
- `account_snapshots`: every account snapshot, `_id` = `<account_id>:<seq>` like `snapshots`.

FerretDB v1 applies an update as read-modify-write without isolation: concurrent `$set`s of
different fields of one document lose all but one (20 concurrent writes keep about 4). Writes to
the shared day and asset documents are therefore serialized in this process. On MongoDB each
update is atomic, so several replicas are safe; on FerretDB (local runs) use one replica.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from metrics.domain import Plan, PullReason, PullStatus
from metrics.ports import (
    AccountRecord,
    AccountView,
    PostView,
    PullRecord,
    RollupEntry,
    Snapshot,
    TrackedAccount,
    TrackedPost,
)
from shared.events import Platform
from shared.mongo import Document, IndexSpec, bulk_write_chunked, insert_new, update_each

POSTS = "posts"
SNAPSHOTS = "snapshots"
ROLLUP_ENTRIES = "rollup_entries"
ASSETS = "assets"
ACCOUNTS = "accounts"
ACCOUNT_SNAPSHOTS = "account_snapshots"

_Update = tuple[Document, Document]  # an update_one's filter and update

# For real MongoDB, where these make the few non-_id queries cheap; FerretDB never reads them (ensure_indexes).
INDEXES = [
    IndexSpec(POSTS, [("active", 1), ("partition", 1)]),
    IndexSpec(SNAPSHOTS, [("post_id", 1), ("collected_at", 1)]),
    IndexSpec(ACCOUNTS, [("active", 1), ("partition", 1)]),
    IndexSpec(ROLLUP_ENTRIES, [("workspace_id", 1), ("published_at", 1)]),
]


def field_key(post_id: str) -> str:
    """A post id usable as a field name (no dots, no leading dollar)."""
    return post_id.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def _plan_fields(item: TrackedPost | TrackedAccount) -> Document:
    plan = item.plan
    return {
        "plan_due_at": plan.due_at if plan else None,
        "plan_slot_at": plan.slot_at if plan else None,
        "plan_reason": plan.reason.value if plan else None,
        "plan_tries": plan.tries if plan else 0,
        "active": plan is not None,
    }


def _to_doc(post: TrackedPost, now: datetime) -> Document:
    return {
        "_id": post.post_id,
        "workspace_id": post.workspace_id,
        "correlation_id": post.correlation_id,
        "asset_id": post.asset_id,
        "platform": post.platform.value,
        "account_id": post.account_id,
        "remote_id": post.remote_id,
        "campaign": post.campaign,
        "published_at": post.published_at,
        "partition": post.partition,
        **_plan_fields(post),
        "status": post.status.value,
        "status_note": None,
        "last_attempt_at": None,
        "last_refresh_at": None,
        "latest_ts": 0.0,
        "collected_at": None,
        "collected_reason": None,
        "metrics": None,
        "raw": None,
        "snapshots": 0,
        "created_at": now,
        "updated_at": now,
    }


def _plan_from(doc: Document) -> Plan | None:
    if doc.get("plan_due_at") is None:
        return None
    return Plan(
        doc["plan_due_at"], doc["plan_slot_at"], PullReason(doc["plan_reason"]), int(doc.get("plan_tries") or 0)
    )


def _snapshot_from(seq: int, snap: Document) -> Snapshot:
    return Snapshot(
        seq=seq,
        collected_at=snap["collected_at"],
        reason=snap["reason"],
        status=snap["status"],
        metrics=snap.get("metrics") or {},
        raw=snap.get("raw") or {},
    )


def _from_doc(doc: Document) -> TrackedPost:
    plan = _plan_from(doc)
    return TrackedPost(
        post_id=doc["_id"],
        workspace_id=doc["workspace_id"],
        correlation_id=doc["correlation_id"],
        asset_id=doc["asset_id"],
        platform=Platform(doc["platform"]),
        account_id=doc["account_id"],
        remote_id=doc["remote_id"],
        campaign=doc.get("campaign"),
        published_at=doc["published_at"],
        partition=int(doc["partition"]),
        plan=plan,
        status=PullStatus(doc.get("status") or PullStatus.PENDING.value),
        snapshots=int(doc.get("snapshots") or 0),
    )


def _rollup_entry(post: TrackedPost) -> Document:
    return {
        "_id": post.post_id,
        "workspace_id": post.workspace_id,
        "platform": post.platform.value,
        "account_id": post.account_id,
        "campaign": post.campaign,
        "published_at": post.published_at,
        "metrics": None,
        "latest_ts": 0.0,
    }


class MongoMetricsStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._shared_writes = asyncio.Lock()  # see the module docstring
        self._posts = db[POSTS]
        self._snapshots = db[SNAPSHOTS]
        self._rollups = db[ROLLUP_ENTRIES]
        self._assets = db[ASSETS]

    async def add(self, posts: Sequence[TrackedPost]) -> set[str]:
        now = datetime.now(UTC)
        # Read indexes first: a crash before the insert is repaired by the redelivery, and
        # writing them again never clobbers values collected since.
        await self._index(posts)
        await insert_new(self._rollups, [_rollup_entry(p) for p in posts])
        return {posts[i].post_id for i in await insert_new(self._posts, [_to_doc(p, now) for p in posts])}

    async def _index(self, posts: Sequence[TrackedPost]) -> None:
        by_asset: dict[str, Document] = {}
        for post in posts:
            doc = by_asset.setdefault(
                post.asset_id, {"_id": post.asset_id, "workspace_id": post.workspace_id, "posts": {}}
            )
            doc["posts"][field_key(post.post_id)] = post.post_id
        docs = list(by_asset.values())
        async with self._shared_writes:
            # Insert first: an asset's posts are usually published together, so its document is
            # mostly new, and an insert costs FerretDB a fraction of an upsert (see insert_new).
            # Only assets indexed by an earlier batch are updated.
            existing = [docs[i] for i in await insert_new(self._assets, docs)]
            await bulk_write_chunked(
                self._assets,
                [
                    UpdateOne({"_id": d["_id"]}, {"$set": {f"posts.{k}": v for k, v in d["posts"].items()}})
                    for d in existing
                ],
            )

    async def load_active(self, partitions: Collection[int]) -> list[TrackedPost]:
        return [_from_doc(d) async for d in _active(self._posts, partitions)]

    async def get(self, post_id: str) -> PostView | None:
        doc = await self._posts.find_one({"_id": post_id})
        if doc is None:
            return None
        return PostView(
            post=_from_doc(doc),
            metrics=doc.get("metrics"),
            collected_at=doc.get("collected_at"),
            collected_reason=doc.get("collected_reason"),
            status_note=doc.get("status_note"),
            last_attempt_at=doc.get("last_attempt_at"),
            last_refresh_at=doc.get("last_refresh_at"),
            snapshots=int(doc.get("snapshots") or 0),
        )

    async def record_pulls(self, pulls: Sequence[tuple[PullRecord, TrackedPost | None]]) -> dict[str, int]:
        # Bulk, not several round trips per pull. A snapshot is numbered from the count the
        # owner holds in memory; only a refresh racing it (another replica, or a crash between
        # the two writes) takes that number first, and then the counted path below numbers it.
        stored: dict[str, int] = {}
        with_values = [record for record, _ in pulls if record.metrics is not None]
        taken = await insert_new(
            self._snapshots, [_snapshot_doc(r, f"{r.post.post_id}:{r.post.snapshots + 1:08d}") for r in with_values]
        )
        raced = [with_values[i] for i in taken]
        raced_ids = {record.post.post_id for record in raced}
        posts: list[UpdateOne] = []
        with_latest: list[tuple[_Update, _Update]] = []
        rollups: list[UpdateOne] = []
        for record, planned in pulls:
            post_id = record.post.post_id
            fields = {**_attempt_status(record), **(_plan_fields(planned) if planned else {})}
            update: Document = {"$set": fields}
            if record.metrics is not None and post_id not in raced_ids:
                stored[post_id] = record.post.snapshots + 1
                update["$max"] = {"snapshots": stored[post_id]}  # never below a racing refresh's count
            if record.metrics is not None and record.status is PullStatus.OK:
                # Only newer values replace the latest: a slow pull finishing after a faster one loses.
                ts = record.attempted_at.timestamp()
                newer = {"_id": post_id, "latest_ts": {"$not": {"$gte": ts}}}
                with_latest.append(
                    ((newer, {**update, "$set": {**fields, **_latest_fields(record)}}), ({"_id": post_id}, update))
                )
                rollups.append(UpdateOne(newer, {"$set": {"latest_ts": ts, "metrics": record.metrics}}))
            else:
                posts.append(UpdateOne({"_id": post_id}, update))
        await bulk_write_chunked(self._posts, posts)
        await self._update_with_latest(with_latest)
        await bulk_write_chunked(self._rollups, rollups)
        for record in raced:
            seq = await self._append_snapshot(record, _attempt_status(record))
            if seq is not None:
                stored[record.post.post_id] = seq
        return stored

    async def _update_with_latest(self, writes: Sequence[tuple[_Update, _Update]]) -> None:
        """Each pull's status and newer values in one update of its post, not two: FerretDB reads
        and rewrites the whole document for each. Where newer values were stored meanwhile (the
        filter misses), only the status part applies."""
        matched = await update_each(self._posts, [combined for combined, _ in writes])
        for (_, status_only), hit in zip(writes, matched, strict=True):
            if not hit:
                await self._posts.update_one(*status_only)

    async def _append_snapshot(self, record: PullRecord, status: Document) -> int | None:
        """Take the post's next snapshot number atomically and store the snapshot under it."""
        post = record.post
        for _ in range(5):  # a racing pull of the same post may take the same number on FerretDB
            counted = await self._posts.find_one_and_update(
                {"_id": post.post_id},
                {"$inc": {"snapshots": 1}, "$set": status},  # no projection: FerretDB does not take one here
                return_document=ReturnDocument.AFTER,
            )
            if counted is None:
                return None
            seq = int(counted["snapshots"])
            try:
                await self._snapshots.insert_one(_snapshot_doc(record, f"{post.post_id}:{seq:08d}"))
            except DuplicateKeyError:
                continue
            return seq
        return None

    async def claim_refresh(self, post_id: str, now: datetime | None, previous: datetime | None) -> bool:
        result = await self._posts.update_one(
            {"_id": post_id, "last_refresh_at": previous}, {"$set": {"last_refresh_at": now}}
        )
        return result.modified_count == 1

    async def history(self, post_id: str, limit: int, before_seq: int | None) -> list[Snapshot]:
        return await _history(self._posts, self._snapshots, post_id, limit, before_seq)

    async def asset_posts(self, asset_id: str) -> list[str]:
        doc = await self._assets.find_one({"_id": asset_id})
        posts = doc.get("posts") if doc else None
        return sorted(str(v) for v in posts.values()) if isinstance(posts, dict) else []

    async def rollup_entries(self, workspace_id: str, start: datetime, end: datetime) -> list[RollupEntry]:
        query = {"workspace_id": workspace_id, "published_at": {"$gte": start, "$lt": end}}
        return [
            RollupEntry(
                post_id=doc["_id"],
                platform=doc["platform"],
                account_id=doc["account_id"],
                campaign=doc.get("campaign"),
                published_at=doc["published_at"],
                metrics=doc.get("metrics"),
            )
            async for doc in self._rollups.find(query)
        ]


def _snapshot_doc(record: PullRecord, snapshot_id: str) -> Document:
    post = record.post
    return {
        "_id": snapshot_id,
        "post_id": post.post_id,
        "workspace_id": post.workspace_id,
        "platform": post.platform.value,
        "collected_at": record.attempted_at,
        "reason": record.reason.value,
        "status": record.status.value,
        "metrics": record.metrics,
        "raw": record.raw,
    }


def _latest_fields(record: PullRecord) -> Document:
    return {
        "latest_ts": record.attempted_at.timestamp(),
        "collected_at": record.attempted_at,
        "collected_reason": record.reason.value,
        "metrics": record.metrics,
        "raw": record.raw,
    }


def _attempt_status(record: PullRecord | AccountRecord) -> Document:
    """What every pull or snapshot attempt records on its post or account, whatever its outcome."""
    return {
        "status": record.status.value,
        "status_note": record.note,
        "last_attempt_at": record.attempted_at,
        "last_error": record.error,
        "updated_at": datetime.now(UTC),
    }


async def _active(collection: AsyncCollection[Document], partitions: Collection[int]) -> AsyncIterator[Document]:
    """The planned documents of the partitions this replica owns."""
    if not partitions:
        return
    async for doc in collection.find({"active": True, "partition": {"$in": list(partitions)}}):
        yield doc


async def _history(
    owners: AsyncCollection[Document],
    snapshots: AsyncCollection[Document],
    owner_id: str,
    limit: int,
    before_seq: int | None,
) -> list[Snapshot]:
    """A post's or an account's snapshots, newest first, each read by `_id` (`<owner>:<seq>`)."""
    doc = await owners.find_one({"_id": owner_id}, {"snapshots": 1})
    if doc is None:
        return []
    last = int(doc.get("snapshots") or 0)
    if before_seq is not None:
        last = min(last, before_seq - 1)
    found: list[Snapshot] = []
    for seq in range(last, max(0, last - limit), -1):
        snap = await snapshots.find_one({"_id": f"{owner_id}:{seq:08d}"})
        if snap is not None:
            found.append(_snapshot_from(seq, snap))
    return found


def _account_from(doc: Document) -> TrackedAccount:
    return TrackedAccount(
        account_id=doc["_id"],
        workspace_id=doc["workspace_id"],
        platform=Platform(doc["platform"]),
        partition=int(doc["partition"]),
        plan=_plan_from(doc),
        status=PullStatus(doc.get("status") or PullStatus.PENDING.value),
    )


class MongoAccountStore:
    """Account snapshots: documents written by one replica each (the owner of the account's
    partition), so none of the shared-document serialization of the post store is needed."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._accounts = db[ACCOUNTS]
        self._snapshots = db[ACCOUNT_SNAPSHOTS]

    async def add(self, accounts: Sequence[TrackedAccount]) -> set[str]:
        now = datetime.now(UTC)
        existing: set[str] = set()
        for account in accounts:
            try:
                await self._accounts.insert_one(
                    {
                        "_id": account.account_id,
                        "workspace_id": account.workspace_id,
                        "platform": account.platform.value,
                        "partition": account.partition,
                        **_plan_fields(account),
                        "status": account.status.value,
                        "status_note": None,
                        "last_attempt_at": None,
                        "collected_at": None,
                        "collected_reason": None,
                        "metrics": None,
                        "raw": None,
                        "snapshots": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            except DuplicateKeyError:
                existing.add(account.account_id)
        return existing

    async def load_active(self, partitions: Collection[int]) -> list[TrackedAccount]:
        return [_account_from(d) async for d in _active(self._accounts, partitions)]

    async def get(self, account_id: str) -> AccountView | None:
        doc = await self._accounts.find_one({"_id": account_id})
        if doc is None:
            return None
        return AccountView(
            account=_account_from(doc),
            metrics=doc.get("metrics"),
            collected_at=doc.get("collected_at"),
            collected_reason=doc.get("collected_reason"),
            status_note=doc.get("status_note"),
            last_attempt_at=doc.get("last_attempt_at"),
            snapshots=int(doc.get("snapshots") or 0),
        )

    async def save_plan(self, account: TrackedAccount) -> None:
        await self._accounts.update_one(
            {"_id": account.account_id}, {"$set": {**_plan_fields(account), "updated_at": datetime.now(UTC)}}
        )

    async def record(self, record: AccountRecord) -> None:
        account = record.account
        status = _attempt_status(record)
        if record.metrics is None:
            await self._accounts.update_one({"_id": account.account_id}, {"$set": status})
            return
        latest = {
            "collected_at": record.attempted_at,
            "collected_reason": record.reason.value,
            "metrics": record.metrics,
            "raw": record.raw,
        }
        counted = await self._accounts.find_one_and_update(
            {"_id": account.account_id},
            {"$inc": {"snapshots": 1}, "$set": {**status, **latest}},
            return_document=ReturnDocument.AFTER,
        )
        if counted is None:
            return
        # During a rebalance two replicas may briefly both own the account, and FerretDB's $inc is not
        # isolated: a number taken twice keeps the first snapshot rather than failing this one.
        with contextlib.suppress(DuplicateKeyError):
            await self._snapshots.insert_one(
                {
                    "_id": f"{account.account_id}:{int(counted['snapshots']):08d}",
                    "account_id": account.account_id,
                    "workspace_id": account.workspace_id,
                    "platform": account.platform.value,
                    "collected_at": record.attempted_at,
                    "reason": record.reason.value,
                    "status": record.status.value,
                    "metrics": record.metrics,
                    "raw": record.raw,
                }
            )

    async def history(self, account_id: str, limit: int, before_seq: int | None) -> list[Snapshot]:
        return await _history(self._accounts, self._snapshots, account_id, limit, before_seq)
