from __future__ import annotations

import httpx

from tests.emulator.conftest import auth
from tools.emulator.client import AccountInfo, EmulatorClient


async def create_container(http: httpx.AsyncClient, account: AccountInfo, caption: str) -> str:
    response = await http.post(
        f"/instagram/{account.account_id}/media",
        data={"image_url": "https://cdn.example/a.jpg", "caption": caption, "access_token": account.access_token},
    )
    assert response.status_code == 200, response.text
    container_id: str = response.json()["id"]
    return container_id


async def publish(http: httpx.AsyncClient, account: AccountInfo, container_id: str) -> httpx.Response:
    return await http.post(
        f"/instagram/{account.account_id}/media_publish", params={"creation_id": container_id}, headers=auth(account)
    )


async def test_container_flow_publishes_once_and_reads_back(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    await emu.set_processing(5000, platform="instagram")
    account = await emu.create_account("instagram", username="brand")
    container = await create_container(http, account, "launch post_id=p1 #new")

    status = await http.get(f"/instagram/{container}", params={"fields": "status_code"}, headers=auth(account))
    assert status.json() == {"id": container, "status_code": "IN_PROGRESS"}
    early = await publish(http, account, container)
    assert early.status_code == 400
    assert early.json()["error"]["code"] == 9007
    assert early.json()["error"]["error_subcode"] == 2207027

    await emu.advance_clock(6)
    status = await http.get(f"/instagram/{container}", params={"fields": "status_code"}, headers=auth(account))
    assert status.json()["status_code"] == "FINISHED"
    published = await publish(http, account, container)
    assert published.status_code == 200
    media_id = published.json()["id"]

    again = await publish(http, account, container)
    assert again.status_code == 400  # a published container cannot make a second post
    status = await http.get(f"/instagram/{container}", params={"fields": "status_code"}, headers=auth(account))
    assert status.json()["status_code"] == "PUBLISHED"

    media = await http.get(f"/instagram/{media_id}", params={"fields": "permalink,caption"}, headers=auth(account))
    assert media.json()["permalink"].startswith("https://www.instagram.com/p/")
    assert media.json()["caption"] == "launch post_id=p1 #new"
    recent = await http.get(
        f"/instagram/{account.account_id}/media",
        params={"fields": "id,caption,timestamp,permalink"},
        headers=auth(account),
    )
    assert [m["id"] for m in recent.json()["data"]] == [media_id]
    me = await http.get("/instagram/me", params={"fields": "id,username"}, headers=auth(account))
    assert me.json() == {"id": account.account_id, "username": "brand"}
    posts = await emu.posts(platform="instagram")
    assert [(p.remote_id, p.text) for p in posts] == [(media_id, "launch post_id=p1 #new")]


async def test_publishing_quota_is_enforced_and_reported(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    account = await emu.create_account("instagram")
    await emu.set_limits("instagram", account_id=account.account_id, publish_limit=2)
    for n in range(2):
        response = await publish(http, account, await create_container(http, account, f"post {n}"))
        assert response.status_code == 200

    limit = await http.get(
        f"/instagram/{account.account_id}/content_publishing_limit",
        params={"fields": "quota_usage,config"},
        headers=auth(account),
    )
    assert limit.json() == {"data": [{"quota_usage": 2, "config": {"quota_total": 2, "quota_duration": 86400}}]}
    refused = await publish(http, account, await create_container(http, account, "post 3"))
    error = refused.json()["error"]
    assert (refused.status_code, error["code"], error["error_subcode"]) == (400, 9, 2207042)

    await emu.advance_clock(86_401)  # the rolling window moves on
    assert (await publish(http, account, await create_container(http, account, "post 4"))).status_code == 200


async def test_token_errors_and_refresh(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    account = await emu.create_account("instagram")
    refreshed = await http.get(
        "/instagram/refresh_access_token",
        params={"grant_type": "ig_refresh_token", "access_token": account.access_token},
    )
    assert refreshed.status_code == 200
    new_token = refreshed.json()["access_token"]
    assert new_token != account.access_token
    assert refreshed.json()["expires_in"] > 59 * 86400

    await emu.expire_token("instagram", account.account_id)
    expired = await http.get("/instagram/me", params={"access_token": new_token})
    assert expired.json()["error"]["code"] == 190
    assert expired.json()["error"]["error_subcode"] == 463

    await emu.reconnect("instagram", account.account_id)
    await emu.revoke("instagram", account.account_id)
    fresh = await emu.account("instagram", account.account_id)
    revoked = await http.get("/instagram/me", params={"access_token": fresh.access_token})
    assert revoked.json()["error"]["error_subcode"] == 460
    unknown = await http.get("/instagram/me", params={"access_token": "nope"})
    assert unknown.json()["error"]["code"] == 190


async def test_injected_faults_use_graph_codes(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    account = await emu.create_account("instagram")
    container = await create_container(http, account, "faulty")
    for kind, code, subcode in [
        ("content_rejected", 36000, 2207004),
        ("spam", 4, 2207051),
        ("rate_limit", 17, None),
        ("server_error", 2, 2207001),
        ("token_expired", 190, 463),
    ]:
        await emu.add_fault(kind, platform="instagram", count=1)
        response = await publish(http, account, container)
        error = response.json()["error"]
        assert (error["code"], error.get("error_subcode")) == (code, subcode), kind
    assert (await publish(http, account, container)).status_code == 200
    assert len(await emu.posts()) == 1


async def test_insights_defaults_overrides_and_not_enough_viewers(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    account = await emu.create_account("instagram")
    media_id = (await publish(http, account, await create_container(http, account, "x"))).json()["id"]
    url = f"/instagram/{media_id}/insights"
    first = await http.get(url, params={"metric": "views,likes"}, headers=auth(account))
    values = {m["name"]: m["values"][0]["value"] for m in first.json()["data"]}
    assert values["views"] > 0
    assert values["likes"] > 0
    second = await http.get(url, params={"metric": "views,likes"}, headers=auth(account))
    assert second.json() == first.json()  # deterministic

    await emu.set_insights("instagram", media_id, {"views": 1234})
    third = await http.get(url, params={"metric": "views"}, headers=auth(account))
    assert third.json()["data"][0]["values"][0]["value"] == 1234

    await emu.set_insights("instagram", media_id, not_enough_viewers=True)
    low = await http.get(url, params={"metric": "views"}, headers=auth(account))
    assert low.status_code == 400
    assert low.json()["error"]["code"] == 10
    assert "Not enough viewers" in low.json()["error"]["message"]


async def test_container_error_and_expiry(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    account = await emu.create_account("instagram")
    await emu.set_processing(0, platform="instagram", outcome="error")
    failed = await create_container(http, account, "bad media")
    status = await http.get(f"/instagram/{failed}", params={"fields": "status_code"}, headers=auth(account))
    assert status.json()["status_code"] == "ERROR"
    await emu.set_processing(0, platform="instagram")
    stale = await create_container(http, account, "late")
    await emu.advance_clock(86_401)
    response = await publish(http, account, stale)
    assert response.json()["error"]["error_subcode"] == 2207020


async def test_threads_flow_and_limit(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    account = await emu.create_account("threads", username="brand")
    created = await http.post(
        f"/threads/{account.account_id}/threads", params={"media_type": "TEXT", "text": "hi"}, headers=auth(account)
    )
    container = created.json()["id"]
    status = await http.get(f"/threads/{container}", params={"fields": "status"}, headers=auth(account))
    assert status.json()["status"] == "FINISHED"
    published = await http.post(
        f"/threads/{account.account_id}/threads_publish", params={"creation_id": container}, headers=auth(account)
    )
    media_id = published.json()["id"]
    limit = await http.get(
        f"/threads/{account.account_id}/threads_publishing_limit",
        params={"fields": "quota_usage,config"},
        headers=auth(account),
    )
    assert limit.json()["data"][0]["quota_usage"] == 1
    assert limit.json()["data"][0]["config"]["quota_total"] == 250
    insights = await http.get(
        f"/threads/{media_id}/insights", params={"metric": "views,replies"}, headers=auth(account)
    )
    assert [m["name"] for m in insights.json()["data"]] == ["views", "replies"]
    too_long = await http.post(
        f"/threads/{account.account_id}/threads",
        params={"media_type": "TEXT", "text": "x" * 501},
        headers=auth(account),
    )
    assert too_long.status_code == 400
    refreshed = await http.get(
        "/threads/refresh_access_token", params={"grant_type": "th_refresh_token", "access_token": account.access_token}
    )
    assert refreshed.status_code == 200
