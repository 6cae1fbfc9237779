"""Events emitted and consumed through the real Kafka broker; the board under duplicated and
reordered events; tokens never leave the credentials store in plaintext."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from shared import topics
from shared.events import (
    ALL_EVENTS,
    AccountStatus,
    AccountStatusChanged,
    AssetApproved,
    CanonicalMetrics,
    ErrorCode,
    Event,
    Platform,
    PostFailed,
    PostFormat,
    PostMetricsSynced,
    PostPublished,
    PostRetryRequested,
    PostScheduled,
    decode,
)
from shared.kafka import EventBus, build_broker
from shared.metrics import build_metrics
from shared.mongo import Document
from tests.approval.conftest import ACCESS, REFRESH, Api, auth

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
async def bus(api: Api) -> AsyncIterator[EventBus]:
    metrics = build_metrics()
    broker = build_broker(api.settings.kafka, service="tests", metrics=metrics)
    events = EventBus(broker, api.settings.kafka, metrics, client_id="tests")
    await broker.start()
    await events.start()
    yield events
    await events.stop()
    await broker.stop()


async def read(api: Api, topic: str, count: int) -> list[Event]:
    consumer = AIOKafkaConsumer(
        api.settings.kafka.topic_prefix + topic,
        bootstrap_servers=api.settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        events: list[Event] = []
        for _ in range(100):
            batch = await consumer.getmany(timeout_ms=300)
            events.extend(decode(r.value, ALL_EVENTS) for rs in batch.values() for r in rs)
            if len(events) >= count:
                break
        return events
    finally:
        await consumer.stop()


async def get(api: Api, key: str, path: str) -> Any:
    r = await api.client.get(path, headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()


async def wait_for(api: Api, key: str, path: str, field: str, value: Any) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def poll() -> None:
        nonlocal last
        while True:
            last = await get(api, key, path)
            if last.get(field) == value:
                return
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(poll(), timeout=30)
    except TimeoutError:
        raise AssertionError(f"{path}: {field} never became {value!r}; last {last}") from None
    return last


async def test_approval_emits_and_the_board_follows_post_events_in_any_order(
    api: Api, bus: EventBus, mongo: AsyncMongoClient[Document]
) -> None:
    workspace_id, admin = await api.workspace()
    account = await api.account(admin)
    asset = await api.asset(admin, account["account_id"])
    r = await api.client.post(f"/v1/assets/{asset['asset_id']}/approve", json={}, headers=auth(admin))
    assert r.status_code == 200, r.text

    (approved,) = await read(api, topics.ASSETS_APPROVED, 1)
    assert isinstance(approved, AssetApproved)
    assert approved.asset_id == asset["asset_id"]
    assert approved.workspace_id == workspace_id
    assert [(t.target_id, t.timezone, t.platform) for t in approved.targets] == [
        ("ig", "Asia/Tokyo", Platform.INSTAGRAM)
    ]
    assert ACCESS not in approved.model_dump_json()
    raw = await mongo[api.settings.database]["assets"].find_one({"_id": asset["asset_id"]})
    assert raw is not None
    assert raw["outbox"] == {}
    assert raw["outbox_since"] is None

    (post,) = (await get(api, admin, f"/v1/assets/{asset['asset_id']}/posts"))["posts"]
    post_id = post["post_id"]
    common: dict[str, Any] = {
        "producer": "tests",
        "workspace_id": workspace_id,
        "correlation_id": asset["asset_id"],
        "post_id": post_id,
        "asset_id": asset["asset_id"],
        "platform": Platform.INSTAGRAM,
        "account_id": account["account_id"],
    }
    scheduled = PostScheduled(
        **common, target_id="ig", format=PostFormat.REEL, due_at=T0 + timedelta(days=30), occurred_at=T0
    )
    published = PostPublished(
        **common,
        remote_id="1789",
        permalink="https://instagram.example/p/1789",
        published_at=T0 + timedelta(days=30),
        attempt=1,
        occurred_at=T0 + timedelta(days=30),
    )
    # Published first, then a duplicate, then the late PostScheduled: the post stays published.
    for topic, event in (
        (topics.POSTS_PUBLISHED, published),
        (topics.POSTS_PUBLISHED, published),
        (topics.POSTS_SCHEDULED, scheduled),
    ):
        await bus.publish(topic, event, key=post_id)
    await wait_for(api, admin, f"/v1/posts/{post_id}", "status", "published")
    metrics = PostMetricsSynced(
        **{k: v for k, v in common.items() if k != "asset_id"},
        metrics=CanonicalMetrics(views=10, likes=2),
        collected_at=T0 + timedelta(days=31),
        reason="first",
    )
    await bus.publish(topics.METRICS_SYNCED, metrics, key=post_id)
    final = await wait_for(api, admin, f"/v1/posts/{post_id}", "metrics_collected_at", "2027-01-01T00:00:00Z")
    assert final["status"] == "published"
    assert final["permalink"] == "https://instagram.example/p/1789"
    assert final["metrics"]["views"] == 10
    board = await get(api, admin, f"/v1/assets/{asset['asset_id']}")
    assert board["aggregate_status"] == "published"
    calendar = await get(api, admin, "/v1/calendar?start=2026-12-01T00:00:00Z&end=2027-01-15T00:00:00Z")
    assert calendar["timezone"] == "Europe/Berlin"
    (entry,) = calendar["entries"]
    assert entry["post_id"] == post_id
    assert entry["local_time"].endswith("+01:00")
    other = await get(api, admin, "/v1/calendar?start=2026-12-01T00:00:00Z&end=2027-01-15T00:00:00Z&platform=x")
    assert other["entries"] == []


async def test_a_failed_post_is_retried_through_the_command_topic(api: Api, bus: EventBus) -> None:
    workspace_id, admin = await api.workspace()
    account = await api.account(admin)
    asset = await api.asset(admin, account["account_id"])
    await api.client.post(f"/v1/assets/{asset['asset_id']}/approve", json={}, headers=auth(admin))
    (post,) = (await get(api, admin, f"/v1/assets/{asset['asset_id']}/posts"))["posts"]
    failed = PostFailed(
        producer="tests",
        workspace_id=workspace_id,
        correlation_id=asset["asset_id"],
        post_id=post["post_id"],
        asset_id=asset["asset_id"],
        platform=Platform.INSTAGRAM,
        account_id=account["account_id"],
        error_code=ErrorCode.CONTENT_REJECTED,
        error_message="The aspect ratio is not supported.",
        attempts=1,
    )
    await bus.publish(topics.POSTS_FAILED, failed, key=post["post_id"])
    shown = await wait_for(api, admin, f"/v1/posts/{post['post_id']}", "status", "failed")
    assert shown["error_message"] == "The aspect ratio is not supported."
    r = await api.client.post(f"/v1/posts/{post['post_id']}/retry", headers=auth(admin))
    assert r.status_code == 202, r.text
    commands = await read(api, topics.POSTS_COMMANDS, 1)
    assert isinstance(commands[0], PostRetryRequested)
    assert commands[0].post_id == post["post_id"]


async def test_account_status_flows_both_ways(api: Api, bus: EventBus) -> None:
    workspace_id, admin = await api.workspace()
    account = await api.account(admin)
    account_id = account["account_id"]
    expired = AccountStatusChanged(
        producer="publisher",
        workspace_id=workspace_id,
        correlation_id=account_id,
        account_id=account_id,
        platform=Platform.INSTAGRAM,
        status=AccountStatus.TOKEN_EXPIRED,
        reason="Graph 190",
    )
    await bus.publish(topics.ACCOUNTS_STATUS_CHANGED, expired, key=account_id)
    await wait_for(api, admin, f"/v1/accounts/{account_id}", "status", "token_expired")
    r = await api.client.post(f"/v1/accounts/{account_id}/verify", headers=auth(admin))
    assert r.status_code == 202
    r = await api.client.post(
        f"/v1/accounts/{account_id}/reconnect",
        json={"tokens": {"access_token": "fresh-token-9999"}},
        headers=auth(admin),
    )
    assert r.json()["status"] == "active"
    changes = [e for e in await read(api, topics.ACCOUNTS_STATUS_CHANGED, 3) if isinstance(e, AccountStatusChanged)]
    assert [(e.status, e.previous_status) for e in changes if e.producer == "approval"] == [
        (AccountStatus.ACTIVE, None),
        (AccountStatus.ACTIVE, AccountStatus.TOKEN_EXPIRED),
    ]
    (verify,) = await read(api, topics.ACCOUNTS_COMMANDS, 1)
    assert verify.event_type == "AccountVerifyRequested"


async def test_tokens_are_encrypted_at_rest_and_never_shown(
    api: Api, mongo: AsyncMongoClient[Document], capsys: pytest.CaptureFixture[str]
) -> None:
    _, admin = await api.workspace()
    account = await api.account(admin)
    responses = [str(account)]
    responses.append((await api.client.get(f"/v1/accounts/{account['account_id']}", headers=auth(admin))).text)
    responses.append((await api.client.get("/v1/accounts", headers=auth(admin))).text)
    bad = await api.client.post(
        "/v1/accounts",
        json={"platform": "nope", "handle": "h", "tokens": {"access_token": ACCESS, "refresh_token": REFRESH}},
        headers=auth(admin),
    )
    assert bad.status_code == 422
    responses.append(bad.text)
    raw = await mongo[api.settings.credentials.database]["credentials"].find_one({"_id": account["account_id"]})
    assert raw is not None
    everything = " ".join(responses) + str(raw)
    for token in (ACCESS, REFRESH):
        assert token not in everything
    events = await read(api, topics.ACCOUNTS_STATUS_CHANGED, 1)
    assert all(ACCESS not in e.model_dump_json() for e in events)
    out = capsys.readouterr()
    assert ACCESS not in out.out + out.err
    assert REFRESH not in out.out + out.err
