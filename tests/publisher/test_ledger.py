"""The attempt ledger on the real MongoDB-compatible server: what a retry may continue from."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from publisher.adapters.mongo import MongoLedger
from publisher.domain import Verdict
from publisher.ports import ClaimState, LeaseLost, RecordedOutcome
from shared.mongo import Document

pytestmark = pytest.mark.integration


async def attempt_with_ids(ledger: MongoLedger, post_id: str, verdict: Verdict) -> None:
    now = datetime.now(UTC)
    claim = await ledger.claim(post_id, 1, account_id="a", owner="me", lease_until=now + timedelta(minutes=1), now=now)
    assert claim.state is ClaimState.NEW
    await ledger.save_checkpoint(post_id, 1, owner="me", ids={"publish_id": f"pub-{post_id}"})
    await ledger.record(RecordedOutcome(post_id, 1, verdict, failures=1, events=[]))


async def test_a_retry_sees_the_ids_of_the_attempt_before_unless_it_failed_for_good(
    db: AsyncDatabase[Document],
) -> None:
    ledger = MongoLedger(db)
    try:
        await attempt_with_ids(ledger, "retried", Verdict.RETRY)
        await attempt_with_ids(ledger, "failed", Verdict.FAILED)
        await attempt_with_ids(ledger, "unconfirmed", Verdict.UNCONFIRMED)
        assert await ledger.earlier_checkpoint("retried", 2) == {"publish_id": "pub-retried"}
        assert await ledger.earlier_checkpoint("failed", 2) == {}  # a person's retry starts over
        assert await ledger.earlier_checkpoint("unconfirmed", 2) == {"publish_id": "pub-unconfirmed"}
        assert await ledger.earlier_checkpoint("retried", 1) == {}
        assert await ledger.earlier_checkpoint("never-tried", 2) == {}
    finally:
        await ledger.close()


async def test_checkpoints_written_together_tell_each_writer_whether_it_still_holds_its_lease(
    db: AsyncDatabase[Document],
) -> None:
    ledger = MongoLedger(db)
    now = datetime.now(UTC)
    posts = [f"cp-{i}" for i in range(40)]
    try:
        for post_id in posts:
            await ledger.claim(post_id, 1, account_id="a", owner="me", lease_until=now + timedelta(minutes=1), now=now)
        # Concurrent saves go out in one bulk write; the one whose owner is wrong must be told.
        results = await asyncio.gather(
            *(
                ledger.save_checkpoint(p, 1, owner="someone-else" if p == "cp-7" else "me", ids={"step": p})
                for p in posts
            ),
            return_exceptions=True,
        )
        assert [p for p, r in zip(posts, results, strict=True) if isinstance(r, LeaseLost)] == ["cp-7"]
        assert all(r is None for p, r in zip(posts, results, strict=True) if p != "cp-7")
        saved = {
            d["_id"]: d["checkpoint"] async for d in db["attempts"].find({"_id": {"$in": [f"{p}#1" for p in posts]}})
        }
        assert saved["cp-7#1"] == {}
        assert saved["cp-3#1"] == {"step": "cp-3"}
    finally:
        await ledger.close()
