"""The metrics store on the real MongoDB-compatible server: snapshot numbering when a refresh
took the number first, older values never replacing newer ones, and the per-asset index of posts
published in separate batches."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from metrics.adapters.mongo import MongoMetricsStore
from metrics.domain import Plan, PullReason, PullStatus
from metrics.ports import PullRecord, TrackedPost
from shared.events import Platform
from shared.mongo import Document

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def tracked(post_id: str, asset_id: str = "a") -> TrackedPost:
    return TrackedPost(
        post_id=post_id,
        workspace_id="ws",
        correlation_id="c",
        asset_id=asset_id,
        platform=Platform.X,
        account_id="acc",
        remote_id="r",
        campaign=None,
        published_at=T0,
        partition=0,
        plan=Plan(T0 + timedelta(minutes=1), T0 + timedelta(minutes=1), PullReason.FIRST),
    )


def pulled(post: TrackedPost, minutes: int, views: int) -> PullRecord:
    return PullRecord(
        post=post,
        attempted_at=T0 + timedelta(minutes=minutes),
        reason=PullReason.FIRST,
        status=PullStatus.OK,
        metrics={"views": views},
        raw={"views": views},
    )


async def test_pulls_are_numbered_past_a_racing_refresh_and_older_values_never_win(db: AsyncDatabase[Document]) -> None:
    store = MongoMetricsStore(db)
    post, other = tracked("p1"), tracked("p2")
    await store.add([post, other])
    nightly = Plan(T0 + timedelta(days=1), T0 + timedelta(days=1), PullReason.NIGHTLY)

    stored = await store.record_pulls(
        [(pulled(post, 10, 100), replace(post, plan=nightly)), (pulled(other, 10, 7), replace(other, plan=nightly))]
    )
    assert stored == {"p1": 1, "p2": 1}
    # A refresh stores snapshot 2; then a slower pull whose post still counts 1 finds number 2
    # taken, is numbered 3, and its older values (minute 20) do not replace minute 30's.
    assert await store.record_pulls([(pulled(replace(post, snapshots=1), 30, 300), None)]) == {"p1": 2}
    assert await store.record_pulls([(pulled(replace(post, snapshots=1), 20, 200), None)]) == {"p1": 3}

    view = await store.get("p1")
    assert view is not None
    assert (view.snapshots, view.metrics, view.collected_at) == (3, {"views": 300}, T0 + timedelta(minutes=30))
    assert view.post.plan == nightly  # a refresh leaves the plan as it was
    history = await store.history("p1", limit=10, before_seq=None)
    assert [(s.seq, s.metrics["views"]) for s in history] == [(3, 200), (2, 300), (1, 100)]
    entries = await store.rollup_entries("ws", T0, T0 + timedelta(hours=1))
    assert {e.post_id: e.metrics for e in entries} == {"p1": {"views": 300}, "p2": {"views": 7}}


async def test_an_asset_lists_its_posts_from_every_batch_and_a_redelivery_adds_nothing(
    db: AsyncDatabase[Document],
) -> None:
    store = MongoMetricsStore(db)
    await store.add([tracked("a1.x", "a1"), tracked("b1", "b")])
    # The asset's document exists now: its later posts are added to it, not written over it.
    await store.add([tracked("a1.li", "a1"), tracked("a1$tg", "a1"), tracked("c1", "c")])
    await store.add([tracked("a1.x", "a1")])  # redelivered
    assert await store.asset_posts("a1") == ["a1$tg", "a1.li", "a1.x"]
    assert await store.asset_posts("b") == ["b1"]
    assert await store.asset_posts("c") == ["c1"]
    assert await store.asset_posts("none") == []
