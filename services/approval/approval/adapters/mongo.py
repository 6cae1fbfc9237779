"""MongoDB repositories of the approval service.

Hot paths look documents up by `_id` or `_id` `$in` (the lookups the local FerretDB serves from an index);
lists filter by workspace and are meant for a page at a time. Writes that race use
compare-and-set filters, since there are no transactions to lean on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from approval.autopilot import ApprovalPolicy, PolicyChange
from approval.domain import Account, ApiKey, Asset, AssetState, AttemptEntry, PostStatus, PostView, Workspace
from approval.ports import AssetQuery, Outgoing, Page, PostQuery, SlotQuery
from approval.slots import Slot
from shared.events import ALL_EVENTS, AccountStatus, Platform, decode, encode
from shared.mongo import BULK_CHUNK, DUPLICATE_KEY, Document, IndexSpec, bulk_write_chunked, insert_new

WORKSPACES = "workspaces"
API_KEYS = "api_keys"
ACCOUNTS = "accounts"
ASSETS = "assets"
POSTS = "posts"
POST_ATTEMPTS = "post_attempts"
POLICIES = "approval_policies"
POLICY_CHANGES = "approval_policy_changes"
POLICY_USAGE = "approval_policy_usage"
SLOTS = "slots"

INDEXES = [
    IndexSpec(API_KEYS, [("workspace_id", ASCENDING), ("created_at", ASCENDING)]),
    IndexSpec(ACCOUNTS, [("workspace_id", ASCENDING), ("platform", ASCENDING)]),
    IndexSpec(ASSETS, [("workspace_id", ASCENDING), ("created_at", DESCENDING)]),
    IndexSpec(ASSETS, [("workspace_id", ASCENDING), ("state", ASCENDING)]),
    IndexSpec(ASSETS, [("deleted_at", ASCENDING)]),
    IndexSpec(POSTS, [("workspace_id", ASCENDING), ("due_at", ASCENDING)]),
    IndexSpec(POSTS, [("asset_id", ASCENDING)]),
    IndexSpec(POLICIES, [("workspace_id", ASCENDING)]),
    IndexSpec(POLICY_CHANGES, [("workspace_id", ASCENDING), ("at", DESCENDING)]),
    IndexSpec(SLOTS, [("workspace_id", ASCENDING), ("at", ASCENDING)]),
]

# Ids per `$in` lookup; the local FerretDB serves up to 1,000 from its `_id` index (deploy/local/stack.py).
_ID_CHUNK = 500


def _to_doc(id_value: str, data: dict[str, Any]) -> Document:
    return {"_id": id_value, **data}


def _from_doc(doc: Document, id_field: str) -> dict[str, Any]:
    data = dict(doc)
    data[id_field] = data.pop("_id")
    data.pop("outbox", None)
    data.pop("outbox_since", None)
    return data


class MongoWorkspaces:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c: AsyncCollection[Document] = db[WORKSPACES]

    async def add(self, workspace: Workspace) -> None:
        await self._c.insert_one(_to_doc(workspace.workspace_id, workspace.model_dump(exclude={"workspace_id"})))

    async def get(self, workspace_id: str) -> Workspace | None:
        doc = await self._c.find_one({"_id": workspace_id})
        return Workspace.model_validate(_from_doc(doc, "workspace_id")) if doc else None

    async def save(self, workspace: Workspace) -> None:
        await self._c.replace_one(
            {"_id": workspace.workspace_id}, workspace.model_dump(exclude={"workspace_id"}), upsert=True
        )


class MongoApiKeys:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c: AsyncCollection[Document] = db[API_KEYS]

    async def add(self, key: ApiKey) -> None:
        await self._c.insert_one(_to_doc(key.key_id, key.model_dump(exclude={"key_id"})))

    async def get(self, key_id: str) -> ApiKey | None:
        doc = await self._c.find_one({"_id": key_id})
        return ApiKey.model_validate(_from_doc(doc, "key_id")) if doc else None

    async def search(self, workspace_id: str, page: Page) -> list[ApiKey]:
        cursor = self._c.find({"workspace_id": workspace_id}).sort("created_at", ASCENDING)
        docs = await cursor.skip(page.offset).limit(page.limit).to_list()
        return [ApiKey.model_validate(_from_doc(d, "key_id")) for d in docs]

    async def save(self, key: ApiKey) -> None:
        await self._c.replace_one({"_id": key.key_id}, key.model_dump(exclude={"key_id"}))


class MongoAccounts:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c: AsyncCollection[Document] = db[ACCOUNTS]

    async def add(self, account: Account) -> None:
        await self._c.insert_one(_to_doc(account.account_id, account.model_dump(exclude={"account_id"})))

    async def get(self, workspace_id: str, account_id: str) -> Account | None:
        account = await self.get_any(account_id)
        return account if account and account.workspace_id == workspace_id else None

    async def get_any(self, account_id: str) -> Account | None:
        doc = await self._c.find_one({"_id": account_id})
        return Account.model_validate(_from_doc(doc, "account_id")) if doc else None

    async def search(
        self, workspace_id: str, page: Page, platform: Platform | None, status: AccountStatus | None
    ) -> list[Account]:
        query: Document = {"workspace_id": workspace_id}
        if platform:
            query["platform"] = platform.value
        if status:
            query["status"] = status.value
        cursor = self._c.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        docs = await cursor.skip(page.offset).limit(page.limit).to_list()
        return [Account.model_validate(_from_doc(d, "account_id")) for d in docs]

    async def save(self, account: Account) -> None:
        await self._c.replace_one({"_id": account.account_id}, account.model_dump(exclude={"account_id"}))


def _asset_doc(asset: Asset) -> Document:
    data = asset.model_dump(exclude={"asset_id"})
    # A local wall time must come back without an offset: keep the schedule as JSON values.
    data["schedule"] = asset.schedule.model_dump(mode="json")
    for stored, version in zip(data["versions"], asset.versions, strict=True):
        stored["schedule"] = version.schedule.model_dump(mode="json")
    return data


def _outbox_entries(outgoing: Sequence[Outgoing], now: datetime) -> dict[str, Document]:
    # A map keyed by event id, so a sent event is removed with $unset (FerretDB's $pull cannot
    # match on a field of an array element).
    return {
        str(o.event.event_id): {"topic": o.topic, "key": o.key, "body": encode(o.event).decode(), "created_at": now}
        for o in outgoing
    }


class MongoAssets:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c: AsyncCollection[Document] = db[ASSETS]

    async def add(self, asset: Asset, outbox: Sequence[Outgoing] = ()) -> None:
        doc = _to_doc(asset.asset_id, _asset_doc(asset))
        doc["outbox"] = _outbox_entries(outbox, asset.updated_at)
        doc["outbox_since"] = asset.updated_at if outbox else None
        await self._c.insert_one(doc)

    async def get(self, workspace_id: str, asset_id: str) -> Asset | None:
        asset = await self.get_any(asset_id)
        return asset if asset and asset.workspace_id == workspace_id else None

    async def get_any(self, asset_id: str) -> Asset | None:
        doc = await self._c.find_one({"_id": asset_id})
        return Asset.model_validate(_from_doc(doc, "asset_id")) if doc else None

    async def search(self, workspace_id: str, query: AssetQuery, page: Page) -> list[Asset]:
        filter_: Document = {"workspace_id": workspace_id, "deleted_at": {"$ne": None} if query.deleted else None}
        filter_["state"] = query.state.value if query.state else {"$ne": AssetState.DRAFT.value}
        if query.campaign:
            filter_["campaign"] = query.campaign
        direction = ASCENDING if query.order == "asc" else DESCENDING
        cursor = self._c.find(filter_).sort([(query.sort, direction), ("_id", direction)])
        docs = await cursor.skip(page.offset).limit(page.limit).to_list()
        return [Asset.model_validate(_from_doc(d, "asset_id")) for d in docs]

    async def save(self, asset: Asset, *, expected_updated_at: datetime, outbox: Sequence[Outgoing] = ()) -> bool:
        fields = _asset_doc(asset)
        if outbox:
            fields |= {f"outbox.{k}": v for k, v in _outbox_entries(outbox, asset.updated_at).items()}
            fields["outbox_since"] = asset.updated_at
        result = await self._c.update_one({"_id": asset.asset_id, "updated_at": expected_updated_at}, {"$set": fields})
        return result.matched_count == 1

    async def outbox_done(self, asset_id: str, event_ids: Sequence[str]) -> None:
        await self._c.update_one({"_id": asset_id}, {"$unset": {f"outbox.{e}": "" for e in event_ids}})
        await self._c.update_one({"_id": asset_id, "outbox": {}}, {"$set": {"outbox_since": None}})

    async def pending_outbox(self, older_than: datetime) -> list[tuple[str, list[Outgoing]]]:
        pending: list[tuple[str, list[Outgoing]]] = []
        async for doc in self._c.find({"outbox_since": {"$lt": older_than}}, {"outbox": 1}):
            items = [
                Outgoing(e["topic"], decode(e["body"].encode(), ALL_EVENTS), e["key"], outbox_of=doc["_id"])
                for e in (doc.get("outbox") or {}).values()
            ]
            if items:
                pending.append((doc["_id"], items))
        return pending

    async def set_post_statuses(self, statuses: Sequence[tuple[str, str, PostStatus]]) -> None:
        by_asset: dict[str, Document] = {}
        for asset_id, post_id, status in statuses:
            by_asset.setdefault(asset_id, {})[f"post_statuses.{post_id}"] = status.value
        await bulk_write_chunked(self._c, [UpdateOne({"_id": a}, {"$set": s}) for a, s in by_asset.items()])

    async def purge_deleted(self, before: datetime) -> list[Asset]:
        docs = await self._c.find({"deleted_at": {"$lt": before}}).to_list()
        await bulk_write_chunked(self._c, [DeleteOne({"_id": d["_id"], "deleted_at": d["deleted_at"]}) for d in docs])
        return [Asset.model_validate(_from_doc(d, "asset_id")) for d in docs]


class MongoPosts:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c: AsyncCollection[Document] = db[POSTS]

    @staticmethod
    def _doc(post: PostView) -> Document:
        return post.model_dump(exclude={"post_id"})

    @staticmethod
    def _view(doc: Document) -> PostView:
        return PostView.model_validate(_from_doc(doc, "post_id"))

    async def add_pending(self, posts: Sequence[PostView]) -> None:
        # A post whose events came first is on the board already and stays as they left it.
        await insert_new(self._c, [_to_doc(p.post_id, self._doc(p)) for p in posts])

    async def get(self, workspace_id: str, post_id: str) -> PostView | None:
        post = await self.get_any(post_id)
        return post if post and post.workspace_id == workspace_id else None

    async def get_any(self, post_id: str) -> PostView | None:
        doc = await self._c.find_one({"_id": post_id})
        return self._view(doc) if doc else None

    async def get_many(self, post_ids: Sequence[str]) -> list[PostView]:
        found: list[PostView] = []
        for start in range(0, len(post_ids), _ID_CHUNK):
            chunk = list(post_ids[start : start + _ID_CHUNK])
            found += [self._view(d) async for d in self._c.find({"_id": {"$in": chunk}})]
        return found

    async def search(self, workspace_id: str, query: PostQuery, page: Page) -> list[PostView]:
        filter_: Document = {"workspace_id": workspace_id}
        if query.asset_id:
            filter_["asset_id"] = query.asset_id
        if query.account_id:
            filter_["account_id"] = query.account_id
        if query.platform:
            filter_["platform"] = query.platform.value
        if query.statuses:
            filter_["status"] = {"$in": [s.value for s in query.statuses]}
        if query.campaign:
            filter_["campaign"] = query.campaign
        due: Document = {}
        if query.due_from:
            due["$gte"] = query.due_from.astimezone(UTC)
        if query.due_before:
            due["$lt"] = query.due_before.astimezone(UTC)
        if due:
            filter_["due_at"] = due
        direction = ASCENDING if query.order == "asc" else DESCENDING
        cursor = self._c.find(filter_).sort([("due_at", direction), ("_id", direction)])
        docs = await cursor.skip(page.offset).limit(page.limit).to_list()
        return [self._view(d) for d in docs]

    async def replace(self, post: PostView, *, expected: PostView | None) -> bool:
        if expected is None:
            try:
                await self._c.insert_one(_to_doc(post.post_id, self._doc(post)))
            except DuplicateKeyError:
                return False
            return True
        result = await self._c.replace_one({"_id": post.post_id, "rev": expected.rev}, self._doc(post))
        return result.matched_count == 1

    async def replace_many(self, changes: Sequence[tuple[PostView, PostView | None]]) -> set[str]:
        unsure: set[str] = set()
        for start in range(0, len(changes), BULK_CHUNK):
            chunk = changes[start : start + BULK_CHUNK]
            operations: list[InsertOne[Document] | ReplaceOne[Document]] = [
                InsertOne(_to_doc(post.post_id, self._doc(post)))
                if expected is None
                else ReplaceOne({"_id": post.post_id, "rev": expected.rev}, self._doc(post))
                for post, expected in chunk
            ]
            try:
                result = await self._c.bulk_write(operations, ordered=False)
                written = result.matched_count + result.inserted_count
            except BulkWriteError as error:
                if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                    raise
                written = error.details["nMatched"] + error.details["nInserted"]
            # A bulk result counts, it does not name: when some lost, any of the chunk may have.
            if written < len(chunk):
                unsure |= {post.post_id for post, _ in chunk}
        return unsure

    async def delete_many(self, post_ids: Sequence[str]) -> None:
        await bulk_write_chunked(self._c, [DeleteOne({"_id": p}) for p in post_ids])


class MongoAttempts:
    """One document per attempt entry, `_id` = `<post_id>#<attempt>#<event_id>`: a post's history is
    one `_id` range (indexed on MongoDB; the local FerretDB scans the collection for it, which is
    fine for one post's page but not for hot paths) and a redelivered event lands on its own
    entry. The raw platform error is kept as JSON text: a platform's payload may hold nested arrays
    or keys with dots, which FerretDB refuses to store."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c: AsyncCollection[Document] = db[POST_ATTEMPTS]

    @staticmethod
    def _range(post_id: str) -> Document:
        return {"_id": {"$gte": f"{post_id}#", "$lt": f"{post_id}$"}}  # '$' sorts right after '#'

    async def add_many(self, entries: Sequence[AttemptEntry]) -> None:
        await insert_new(self._c, [self._doc(entry) for entry in entries])  # a redelivered one is there

    @staticmethod
    def _doc(entry: AttemptEntry) -> Document:
        doc = entry.model_dump(exclude={"platform_error"})
        if entry.platform_error is not None:
            doc["platform_error_json"] = json.dumps(entry.platform_error)
        return _to_doc(f"{entry.post_id}#{entry.attempt:05d}#{entry.event_id}", doc)

    async def of_post(self, post_id: str) -> list[AttemptEntry]:
        entries = []
        for doc in await self._c.find(self._range(post_id)).to_list():
            if doc["post_id"] != post_id:
                continue  # a post whose id starts with "<post_id>#"
            raw = doc.get("platform_error_json")
            entries.append(AttemptEntry.model_validate({**doc, "platform_error": json.loads(raw) if raw else None}))
        return sorted(entries, key=lambda e: (e.attempt, e.at))

    async def delete_of_posts(self, post_ids: Sequence[str]) -> None:
        for post_id in post_ids:
            await self._c.delete_many(self._range(post_id))


class MongoPolicies:
    """Policies keyed by workspace and policy id, their audit trail, and daily auto-approval counts
    (one document per policy and day, incremented only while below the cap)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._policies: AsyncCollection[Document] = db[POLICIES]
        self._changes: AsyncCollection[Document] = db[POLICY_CHANGES]
        self._usage: AsyncCollection[Document] = db[POLICY_USAGE]

    async def get_many(self, workspace_id: str, policy_ids: Sequence[str]) -> list[ApprovalPolicy]:
        found = [await self._policies.find_one({"_id": f"{workspace_id}/{pid}"}) for pid in policy_ids]
        return [ApprovalPolicy.model_validate(d) for d in found if d is not None]

    async def search(self, workspace_id: str, page: Page) -> list[ApprovalPolicy]:
        cursor = self._policies.find({"workspace_id": workspace_id}).sort("_id", ASCENDING)
        return [ApprovalPolicy.model_validate(d) for d in await cursor.skip(page.offset).limit(page.limit).to_list()]

    async def save(self, policy: ApprovalPolicy) -> None:
        await self._policies.replace_one(
            {"_id": f"{policy.workspace_id}/{policy.policy_id}"}, policy.model_dump(mode="json"), upsert=True
        )

    async def add_change(self, change: PolicyChange) -> None:
        await self._changes.insert_one(_to_doc(change.change_id, change.model_dump(exclude={"change_id"})))

    async def changes(self, workspace_id: str, page: Page) -> list[PolicyChange]:
        cursor = self._changes.find({"workspace_id": workspace_id}).sort([("at", DESCENDING), ("_id", DESCENDING)])
        docs = await cursor.skip(page.offset).limit(page.limit).to_list()
        return [PolicyChange.model_validate(_from_doc(d, "change_id")) for d in docs]

    async def claim_daily(self, workspace_id: str, policy_id: str, day: date, cap: int) -> bool:
        key = f"{workspace_id}/{policy_id}/{day.isoformat()}"
        try:
            await self._usage.update_one({"_id": key, "count": {"$lt": cap}}, {"$inc": {"count": 1}}, upsert=True)
        except DuplicateKeyError:
            return False  # the day's document exists and is at the cap, so the upsert tried to insert
        return True

    async def release_daily(self, workspace_id: str, policy_id: str, day: date) -> None:
        key = f"{workspace_id}/{policy_id}/{day.isoformat()}"
        await self._usage.update_one({"_id": key, "count": {"$gt": 0}}, {"$inc": {"count": -1}})


class MongoSlots:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c: AsyncCollection[Document] = db[SLOTS]

    async def add(self, slot: Slot) -> None:
        await self._c.insert_one(_to_doc(slot.slot_id, slot.model_dump(exclude={"slot_id"})))

    async def get(self, workspace_id: str, slot_id: str) -> Slot | None:
        doc = await self._c.find_one({"_id": slot_id})
        slot = Slot.model_validate(_from_doc(doc, "slot_id")) if doc else None
        return slot if slot and slot.workspace_id == workspace_id else None

    async def search(self, workspace_id: str, query: SlotQuery, page: Page) -> list[Slot]:
        filter_: Document = {"workspace_id": workspace_id}
        if query.account_id:
            filter_["account_id"] = query.account_id
        if query.empty_only:
            filter_["asset_id"] = None
        at: Document = {}
        if query.start:
            at["$gte"] = query.start.astimezone(UTC)
        if query.end:
            at["$lte"] = query.end.astimezone(UTC)
        if at:
            filter_["at"] = at
        cursor = self._c.find(filter_).sort([("at", ASCENDING), ("_id", ASCENDING)])
        docs = await cursor.skip(page.offset).limit(page.limit).to_list()
        return [Slot.model_validate(_from_doc(d, "slot_id")) for d in docs]

    async def save(self, slot: Slot, *, expected_updated_at: datetime) -> bool:
        result = await self._c.replace_one(
            {"_id": slot.slot_id, "updated_at": expected_updated_at}, slot.model_dump(exclude={"slot_id"})
        )
        return result.matched_count == 1

    async def delete(self, workspace_id: str, slot_id: str) -> bool:
        result = await self._c.delete_one({"_id": slot_id, "workspace_id": workspace_id})
        return result.deleted_count == 1
