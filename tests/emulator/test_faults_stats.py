from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.emulator.conftest import auth
from tools.emulator.client import EmulatorClient
from tools.emulator.errors import ConnectionDropped


async def test_lost_response_creates_the_post_but_the_client_times_out(
    http: httpx.AsyncClient, emu: EmulatorClient
) -> None:
    user = await emu.create_account("x")
    await emu.add_fault("lost_response", platform="x", count=1, hold_ms=5_000)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await http.post("/x/2/tweets", json={"text": "post_id=lost1"}, headers=auth(user))
    [post] = await emu.posts(platform="x", account_id=user.account_id)
    assert post.text == "post_id=lost1"
    retry = await http.post("/x/2/tweets", json={"text": "post_id=lost1"}, headers=auth(user))
    assert retry.status_code == 403  # a naive retry is caught by X's duplicate check
    assert await emu.faults() == []  # count=1 used up


async def test_a_refused_call_is_answered_and_leaves_the_lost_response_for_the_next_success(
    http: httpx.AsyncClient, emu: EmulatorClient
) -> None:
    user = await emu.create_account("x")
    await emu.add_fault("lost_response", platform="x", count=1, hold_ms=0, drop_connection=True)
    refused = await http.post("/x/2/tweets", json={"text": ""}, headers=auth(user))
    assert refused.status_code == 400  # answered at once: nothing was created, so nothing to lose
    assert [f.remaining for f in await emu.faults()] == [1]
    with pytest.raises(ConnectionDropped):
        await http.post("/x/2/tweets", json={"text": "accepted"}, headers=auth(user))
    assert [p.text for p in await emu.posts(platform="x", account_id=user.account_id)] == ["accepted"]
    assert await emu.faults() == []


async def test_lost_response_can_drop_the_connection(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    page = await emu.create_account("facebook")
    await emu.add_fault("lost_response", platform="facebook", count=1, hold_ms=0, drop_connection=True)
    with pytest.raises(ConnectionDropped):  # in-process the drop surfaces as the app's exception
        await http.post(f"/facebook/{page.account_id}/feed", data={"message": "m"}, headers=auth(page))
    assert len(await emu.posts(platform="facebook")) == 1


async def test_faults_by_rate_and_by_account(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    first, second = await emu.create_account("x"), await emu.create_account("x")
    await emu.add_fault("server_error", platform="x", account_id=first.account_id, rate=0.5)
    codes = [
        (await http.post("/x/2/tweets", json={"text": f"n{n}"}, headers=auth(first))).status_code for n in range(40)
    ]
    assert set(codes) == {201, 503}
    assert 5 < codes.count(503) < 35
    other = await http.post("/x/2/tweets", json={"text": "n0"}, headers=auth(second))
    assert other.status_code == 201
    [fault] = await emu.faults()
    assert fault.fired == codes.count(503)
    await emu.remove_fault(fault.id)
    assert await emu.faults() == []


async def test_faults_on_reads_only_with_applies_to_any(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    user = await emu.create_account("x")
    await emu.add_fault("token_expired", platform="x", count=1)
    assert (await http.get("/x/2/users/me", headers=auth(user))).status_code == 200  # publish-only rule
    assert (await http.post("/x/2/tweets", json={"text": "a"}, headers=auth(user))).status_code == 401
    await emu.add_fault("server_error", platform="x", applies_to="any", status=502, count=1)
    assert (await http.get("/x/2/users/me", headers=auth(user))).status_code == 502


async def test_stats_count_duplicates_per_account_and_content_key(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    a, b = await emu.create_account("pinterest"), await emu.create_account("pinterest")

    async def pin(account_token: str, text: str) -> None:
        response = await http.post(
            "/pinterest/v5/pins",
            json={
                "board_id": "b",
                "title": text,
                "media_source": {"source_type": "image_url", "url": "https://c/i.jpg"},
            },
            headers={"Authorization": f"Bearer {account_token}"},
        )
        assert response.status_code == 201

    await pin(a.access_token, "first try post_id=P1")
    await pin(a.access_token, "second try post_id=P1")  # same post, other wording: a double post
    await pin(a.access_token, "post_id=P2")
    await pin(b.access_token, "first try post_id=P1")  # another account: not a duplicate
    plain = await emu.stats()
    assert (plain.posts, plain.duplicates) == (4, 0)
    keyed = await emu.stats(key_pattern=r"post_id=(\S+)")
    assert (keyed.duplicates, keyed.duplicate_groups) == (1, 1)
    [group] = keyed.duplicate_examples
    assert (group.account_id, group.content_key, group.count) == (a.account_id, "P1", 2)
    await pin(a.access_token, "post_id=P2")
    assert (await emu.stats()).duplicates == 1  # exact repeat counts without a pattern
    assert keyed.requests_by_platform["pinterest"] == 4


async def test_latency_and_reset(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    user = await emu.create_account("x")
    await emu.set_latency(150, platform="x")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await http.get("/x/2/users/me", headers=auth(user))
    assert loop.time() - started >= 0.15
    await emu.reset()
    assert await emu.accounts() == []
    assert (await http.get("/x/2/users/me", headers=auth(user))).status_code == 401
    assert (await emu.config())["platform_latency_ms"] == {}


async def test_control_api_rejects_bad_input(emu: EmulatorClient) -> None:
    with pytest.raises(httpx.HTTPStatusError) as unknown:
        await emu.create_account("myspace")
    assert unknown.value.response.status_code == 422
    with pytest.raises(httpx.HTTPStatusError) as missing:
        await emu.revoke("x", "nobody")
    assert missing.value.response.status_code == 404


async def test_an_injected_rate_limit_names_the_reset_it_was_given(
    http: httpx.AsyncClient, emu: EmulatorClient
) -> None:
    user, bot = await emu.create_account("x"), await emu.create_account("telegram")
    await emu.add_fault("rate_limit", platform="x", count=1, retry_after=7)
    await emu.add_fault("rate_limit", platform="telegram", count=1, retry_after=9)
    now = time.time()
    refused = await http.post("/x/2/tweets", json={"text": "a"}, headers=auth(user))
    assert refused.status_code == 429
    assert now + 6 <= int(refused.headers["x-rate-limit-reset"]) <= now + 9
    sent = await http.post(f"/telegram/bot{bot.access_token}/sendMessage", json={"chat_id": "@c", "text": "a"})
    assert sent.status_code == 429
    assert sent.json()["parameters"]["retry_after"] == 9


async def test_latency_can_slow_one_account_only(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    slow, other = await emu.create_account("x"), await emu.create_account("x")
    await emu.set_latency(1000, platform="x", account_id=slow.account_id)
    started = time.monotonic()
    assert (await http.get("/x/2/users/me", headers=auth(other))).status_code == 200
    fast_took = time.monotonic() - started
    started = time.monotonic()
    assert (await http.get("/x/2/users/me", headers=auth(slow))).status_code == 200
    assert time.monotonic() - started >= 1.0 > fast_took
    with pytest.raises(httpx.HTTPStatusError):  # an account's latency names its platform
        await emu.set_latency(10, account_id=slow.account_id)
