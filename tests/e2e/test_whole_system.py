"""End to end, through the HTTP APIs only: content goes through approval, the scheduler, the
publisher and the platforms (the emulator), and comes back as board statuses and metrics. The
emulator's control API sets up accounts, injects faults and shows what went live."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from tests.e2e.conftest import System
from tests.support import until
from tools.demo.api import JSON, TERMINAL_POST_STATUSES, ApiError
from tools.demo.workspace import connect_emulator_account, emulator_tokens
from tools.emulator.client import AccountInfo, PostInfo

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

FINAL_AGGREGATES = {"published", "partially_published", "failed", "cancelled"}


@dataclass(frozen=True)
class Account:
    platform: str
    account_id: str  # approval's
    remote: AccountInfo  # the emulator's account, tokens included


async def connect(system: System, platform: str, **spec: Any) -> Account:
    account, info = await connect_emulator_account(system.api, system.emulator.client, platform, **spec)
    return Account(platform, account["account_id"], info)


async def create_approved(system: System, accounts: list[Account], schedule: JSON, caption: str = "") -> str:
    """An asset with a text post on each account, approved; its id."""
    body = {
        "caption": f"{caption or 'e2e'} {uuid4().hex[:8]}",  # platforms refuse duplicate text
        "targets": [{"target_id": a.platform, "account_id": a.account_id, "format": "post"} for a in accounts],
        "schedule": schedule,
    }
    asset = await system.api.create_asset(body)
    await system.api.approve(asset["asset_id"])
    return str(asset["asset_id"])


def in_seconds(seconds: float) -> tuple[datetime, JSON]:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    return due, {"at_utc": due.isoformat().replace("+00:00", "Z")}


async def board_until(system: System, asset_id: str, check: Any, *, within: float, what: str) -> JSON:
    """The asset's row on the board once `check(row)` holds."""
    row: JSON = {}

    async def holds() -> bool:
        nonlocal row
        row = await system.api.asset_posts(asset_id)
        return bool(check(row))

    await until(holds, within=within, what=f"{what} (last seen: {_statuses(row)})")
    return row


def _statuses(row: JSON) -> list[tuple[str, str]]:
    return [(p["platform"], p["status"]) for p in row.get("posts", [])]


def by_platform(row: JSON) -> dict[str, JSON]:
    return {p["platform"]: p for p in row["posts"]}


async def live(system: System, account: Account) -> list[PostInfo]:
    return await system.emulator.client.posts(account.platform, account.remote.account_id)


async def test_scheduled_asset_publishes_at_its_time_everywhere_and_gets_metrics(system: System) -> None:
    accounts = [await connect(system, p) for p in ("x", "linkedin", "threads", "facebook")]
    due, schedule = in_seconds(8)
    asset_id = await create_approved(system, accounts, schedule, "scheduled")

    row = await board_until(
        system, asset_id, lambda r: all(p["status"] == "scheduled" for p in r["posts"]), within=20, what="scheduled"
    )
    assert {p["platform"] for p in row["posts"]} == {"x", "linkedin", "threads", "facebook"}
    assert all(datetime.fromisoformat(p["due_at"]) == due for p in row["posts"])
    assert [await live(system, a) for a in accounts] == [[], [], [], []]

    row = await board_until(
        system, asset_id, lambda r: r["aggregate_status"] == "published", within=40, what="published"
    )
    posts = by_platform(row)
    for account in accounts:
        (remote,) = await live(system, account)
        post = posts[account.platform]
        assert post["status"] == "published"
        assert post["permalink"], post
        assert post["permalink"] == remote.permalink
        assert post["remote_id"] == remote.remote_id
        # At its time: not before due_at, and within a few seconds of it on this busy machine.
        assert due.timestamp() <= remote.created_ts < due.timestamp() + 10, (remote.created_ts, due)

    metrics: dict[str, JSON] = {}

    async def first_metrics() -> bool:
        for post in row["posts"]:
            try:
                metrics[post["platform"]] = await system.api.post_metrics(post["post_id"])
            except ApiError as error:  # 404 until the metrics service has consumed the PostPublished
                if error.status != 404:
                    raise
                metrics[post["platform"]] = {"status": "unknown yet"}
        return all(m["status"] == "ok" for m in metrics.values())

    await until(first_metrics, within=40, what=f"first metrics: { {p: m['status'] for p, m in metrics.items()} }")
    for platform, values in metrics.items():
        assert values["freshness"]["collected_reason"] == "first", platform
        assert values["metrics"]["views"] is not None, (platform, values["metrics"])


async def test_publish_now(system: System) -> None:
    accounts = [await connect(system, "telegram"), await connect(system, "x")]
    asked = time.time()
    asset_id = await create_approved(system, accounts, {"publish_now": True}, "now")

    row = await board_until(
        system, asset_id, lambda r: r["aggregate_status"] == "published", within=30, what="published"
    )
    for account in accounts:
        (remote,) = await live(system, account)
        assert remote.created_ts >= asked
        assert by_platform(row)[account.platform]["permalink"] == remote.permalink


async def test_cancelled_before_due_never_goes_live(system: System) -> None:
    account = await connect(system, "x")
    due, schedule = in_seconds(8)
    asset_id = await create_approved(system, [account], schedule, "cancel")
    row = await board_until(
        system, asset_id, lambda r: r["posts"][0]["status"] == "scheduled", within=20, what="scheduled"
    )

    await system.api.cancel(row["posts"][0]["post_id"], "changed our mind")

    # The asset's aggregate follows its posts' statuses a moment later (a second write).
    await board_until(
        system,
        asset_id,
        lambda r: (r["posts"][0]["status"], r["aggregate_status"]) == ("cancelled", "cancelled"),
        within=20,
        what="the post and the asset cancelled",
    )

    # Past its due time (with room for a late dispatch) nothing has gone live, and nothing changed.
    async def past_due_and_still_nothing_live() -> bool:
        assert await live(system, account) == []
        return time.time() > due.timestamp() + 3

    await until(past_due_and_still_nothing_live, within=30, what="the due time to pass")
    assert (await system.api.asset_posts(asset_id))["posts"][0]["status"] == "cancelled"


async def test_rate_limited_post_waits_for_the_reset(system: System) -> None:
    account = await connect(system, "x")
    window = 8.0
    await system.emulator.client.set_limits("x", account.remote.account_id, publish_limit=1, publish_window_s=window)
    first = await create_approved(system, [account], {"publish_now": True}, "first")
    await board_until(system, first, lambda r: r["aggregate_status"] == "published", within=30, what="first")
    (used,) = await live(system, account)
    reset_at = used.created_ts + window

    second = await create_approved(system, [account], {"publish_now": True}, "second")
    seen: set[tuple[str, str | None]] = set()

    def published(row: JSON) -> bool:
        post = row["posts"][0]
        seen.add((post["status"], post["error_code"]))
        return bool(post["status"] == "published")

    await board_until(system, second, published, within=40, what="the deferred post")
    assert seen & {("retrying", "rate_limited"), ("queued", "rate_limited")}, seen
    remotes = await live(system, account)
    assert len(remotes) == 2
    assert max(r.created_ts for r in remotes) >= reset_at


async def test_expired_token_holds_the_post_until_reconnect(system: System) -> None:
    account = await connect(system, "x")
    await system.emulator.client.expire_token("x", account.remote.account_id, "both")  # refresh fails too
    asset_id = await create_approved(system, [account], {"publish_now": True}, "held")

    row = await board_until(system, asset_id, lambda r: r["posts"][0]["status"] == "held", within=30, what="held")
    assert row["posts"][0]["held_reason"]

    async def token_expired() -> bool:
        return bool((await system.api.account(account.account_id))["status"] == "token_expired")

    await until(token_expired, within=20, what="the account to show token_expired")
    assert await live(system, account) == []

    fresh = await system.emulator.client.reconnect("x", account.remote.account_id)
    reconnected = await system.api.reconnect(account.account_id, emulator_tokens(fresh))
    assert reconnected["status"] == "active"

    row = await board_until(
        system, asset_id, lambda r: r["posts"][0]["status"] == "published", within=40, what="published"
    )
    (remote,) = await live(system, account)
    assert row["posts"][0]["permalink"] == remote.permalink


async def test_one_target_rejected_leaves_the_asset_partially_published(system: System) -> None:
    accounts = [await connect(system, p) for p in ("x", "linkedin", "telegram")]
    rejected = accounts[1]
    await system.emulator.client.add_fault(
        "content_rejected", platform="linkedin", account_id=rejected.remote.account_id, message="Not on our platform"
    )
    asset_id = await create_approved(system, accounts, {"publish_now": True}, "partial")

    row = await board_until(
        system,
        asset_id,
        lambda r: (
            all(p["status"] in TERMINAL_POST_STATUSES for p in r["posts"]) and r["aggregate_status"] in FINAL_AGGREGATES
        ),
        within=40,
        what="every post done",
    )
    posts = by_platform(row)
    assert row["aggregate_status"] == "partially_published"
    assert posts["x"]["status"] == posts["telegram"]["status"] == "published"
    assert posts["linkedin"]["status"] == "failed"
    assert posts["linkedin"]["error_code"] == "content_rejected"
    assert "Not on our platform" in posts["linkedin"]["error_message"]
    assert await live(system, rejected) == []
    assert [len(await live(system, a)) for a in (accounts[0], accounts[2])] == [1, 1]
