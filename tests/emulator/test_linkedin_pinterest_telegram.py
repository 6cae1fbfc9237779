from __future__ import annotations

from urllib.parse import quote

import httpx

from tests.emulator.conftest import auth
from tools.emulator.client import AccountInfo, EmulatorClient


def li_headers(account: AccountInfo, version: str = "202510") -> dict[str, str]:
    return auth(account) | {"LinkedIn-Version": version, "X-Restli-Protocol-Version": "2.0.0"}


def li_post(account: AccountInfo, text: str) -> dict[str, object]:
    return {
        "author": f"urn:li:person:{account.account_id}",
        "commentary": text,
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }


async def test_linkedin_post_duplicate_and_version(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    member = await emu.create_account("linkedin", username="ada_lovelace")
    created = await http.post("/linkedin/rest/posts", json=li_post(member, "hi post_id=l1"), headers=li_headers(member))
    assert created.status_code == 201
    urn = created.headers["x-restli-id"]
    assert urn.startswith("urn:li:share:")

    duplicate = await http.post(
        "/linkedin/rest/posts", json=li_post(member, "hi post_id=l1"), headers=li_headers(member)
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["code"] == "DUPLICATE_POST"
    assert duplicate.json()["message"] == f"Content is a duplicate of {urn}"

    await emu.set_linkedin_versions(["202401"], active_from="202406")
    for version in ("202401", "202405"):
        retired = await http.post(
            "/linkedin/rest/posts", json=li_post(member, "new"), headers=li_headers(member, version)
        )
        assert (retired.status_code, retired.json()["code"]) == (426, "NONEXISTENT_VERSION")
    missing = await http.post("/linkedin/rest/posts", json=li_post(member, "new"), headers=auth(member))
    assert missing.json()["code"] == "VERSION_MISSING"

    stats = await http.get(
        "/linkedin/rest/memberCreatorPostAnalytics",
        params={"q": "entity", "entity": f"(share:{urn})", "queryType": "IMPRESSION", "aggregation": "TOTAL"},
        headers=li_headers(member),
    )
    assert stats.json()["elements"][0]["count"] > 0
    social = await http.get(f"/linkedin/rest/socialActions/{urn}", headers=li_headers(member))
    assert social.json()["likesSummary"]["totalLikes"] > 0
    me = await http.get("/linkedin/v2/userinfo", headers=auth(member))
    assert me.json()["sub"] == member.account_id
    assert me.json()["given_name"] == "Ada"
    token = await http.post(
        "/linkedin/oauth/v2/accessToken", data={"grant_type": "refresh_token", "refresh_token": member.refresh_token}
    )
    assert token.json()["refresh_token"] == member.refresh_token  # LinkedIn does not rotate
    await emu.revoke("linkedin", member.account_id)
    revoked = await http.get("/linkedin/v2/userinfo", headers=auth(member))
    assert (revoked.status_code, revoked.json()["code"]) == (401, "REVOKED_ACCESS_TOKEN")


async def test_linkedin_image_and_video_uploads(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    member = await emu.create_account("linkedin")
    owner = {"owner": f"urn:li:person:{member.account_id}"}
    image = (
        await http.post(
            "/linkedin/rest/images",
            params={"action": "initializeUpload"},
            json={"initializeUploadRequest": owner},
            headers=li_headers(member),
        )
    ).json()["value"]
    assert image["image"].startswith("urn:li:image:")
    assert (await http.put(image["uploadUrl"], content=b"jpeg", headers=auth(member))).status_code == 201
    with_image = li_post(member, "with an image") | {"content": {"media": {"id": image["image"]}}}
    created = await http.post("/linkedin/rest/posts", json=with_image, headers=li_headers(member))
    assert created.status_code == 201

    await emu.set_processing(2000, platform="linkedin")
    size = 4 * 1024 * 1024 + 10  # two parts
    init = await http.post(
        "/linkedin/rest/videos",
        params={"action": "initializeUpload"},
        json={"initializeUploadRequest": owner | {"fileSizeBytes": size, "uploadCaptions": False}},
        headers=li_headers(member),
    )
    video = init.json()["value"]
    assert [(p["firstByte"], p["lastByte"]) for p in video["uploadInstructions"]] == [
        (0, 4 * 1024 * 1024 - 1),
        (4 * 1024 * 1024, size - 1),
    ]
    etags = []
    for part in video["uploadInstructions"]:
        chunk = b"\x00" * (part["lastByte"] - part["firstByte"] + 1)
        etags.append((await http.put(part["uploadUrl"], content=chunk)).headers["etag"])
    finalize = {"video": video["video"], "uploadToken": "", "uploadedPartIds": etags}
    wrong = await http.post(
        "/linkedin/rest/videos",
        params={"action": "finalizeUpload"},
        json={"finalizeUploadRequest": finalize | {"uploadedPartIds": etags[:1]}},
        headers=li_headers(member),
    )
    assert wrong.status_code == 400
    finalized = await http.post(
        "/linkedin/rest/videos",
        params={"action": "finalizeUpload"},
        json={"finalizeUploadRequest": finalize},
        headers=li_headers(member),
    )
    assert finalized.status_code == 200
    status = await http.get(f"/linkedin/rest/videos/{quote(video['video'], safe='')}", headers=li_headers(member))
    assert status.json()["status"] == "PROCESSING"
    with_video = li_post(member, "with a video") | {"content": {"media": {"id": video["video"]}}}
    early = await http.post("/linkedin/rest/posts", json=with_video, headers=li_headers(member))
    assert (early.status_code, early.json()["code"]) == (422, "UNPROCESSABLE_ENTITY")
    await emu.advance_clock(3)
    status = await http.get(f"/linkedin/rest/videos/{quote(video['video'], safe='')}", headers=li_headers(member))
    assert status.json()["status"] == "AVAILABLE"
    assert (await http.post("/linkedin/rest/posts", json=with_video, headers=li_headers(member))).status_code == 201
    assert [p.media_type for p in await emu.posts("linkedin")] == ["IMAGE", "VIDEO"]


async def test_pinterest_video_pin(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    user = await emu.create_account("pinterest")
    await emu.set_processing(2000, platform="pinterest")
    registered = await http.post("/pinterest/v5/media", json={"media_type": "video"}, headers=auth(user))
    assert registered.status_code == 201
    media_id = registered.json()["media_id"]

    async def status() -> str:
        response = await http.get(f"/pinterest/v5/media/{media_id}", headers=auth(user))
        return str(response.json()["status"])

    assert await status() == "registered"
    form = {k: str(v) for k, v in registered.json()["upload_parameters"].items()}
    upload_url = registered.json()["upload_url"]
    forged = await http.post(upload_url, data=form | {"x-amz-signature": "x"}, files={"file": ("v", b"\x00")})
    assert forged.status_code == 400
    uploaded = await http.post(upload_url, data=form, files={"file": ("v", b"\x00" * 64, "video/mp4")})
    assert uploaded.status_code == 204
    assert await status() == "processing"
    pin = {
        "board_id": "b1",
        "title": "Video",
        "media_source": {"source_type": "video_id", "media_id": media_id, "cover_image_url": "https://cdn/c.jpg"},
    }
    early = await http.post("/pinterest/v5/pins", json=pin, headers=auth(user))
    assert (early.status_code, early.json()["code"]) == (400, 1)
    await emu.advance_clock(3)
    assert await status() == "succeeded"
    created = await http.post("/pinterest/v5/pins", json=pin, headers=auth(user))
    assert created.status_code == 201
    assert created.json()["media"]["media_type"] == "video"
    assert [p.remote_id for p in await emu.posts("pinterest")] == [created.json()["id"]]


async def test_pinterest_pin_analytics_and_errors(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    user = await emu.create_account("pinterest")
    pin = await http.post(
        "/pinterest/v5/pins",
        json={
            "board_id": "b1",
            "title": "Pin",
            "description": "post_id=p9",
            "media_source": {"source_type": "image_url", "url": "https://cdn/a.jpg"},
        },
        headers=auth(user),
    )
    assert pin.status_code == 201
    pin_id = pin.json()["id"]
    analytics = await http.get(
        f"/pinterest/v5/pins/{pin_id}/analytics",
        params={"start_date": "2026-01-01", "end_date": "2026-01-31", "metric_types": "IMPRESSION,SAVE"},
        headers=auth(user),
    )
    assert analytics.json()["all"]["summary_metrics"]["IMPRESSION"] > 0
    board = await http.get("/pinterest/v5/boards/b1/pins", headers=auth(user))
    assert [p["id"] for p in board.json()["items"]] == [pin_id]
    account = await http.get("/pinterest/v5/user_account", headers=auth(user))
    assert account.json()["username"] == user.username
    invalid = await http.post("/pinterest/v5/pins", json={"board_id": "b1"}, headers=auth(user))
    assert (invalid.status_code, invalid.json()["code"]) == (400, 1)
    await emu.add_fault("rate_limit", platform="pinterest", count=1)
    limited = await http.post(
        "/pinterest/v5/pins",
        json={"board_id": "b1", "media_source": {"source_type": "image_url", "url": "https://cdn/b.jpg"}},
        headers=auth(user),
    )
    assert limited.status_code == 429
    assert set(limited.json()) == {"code", "message"}
    unauthorized = await http.get("/pinterest/v5/user_account", headers={"Authorization": "Bearer nope"})
    assert unauthorized.status_code == 401


async def test_telegram_send_flood_and_migration(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    bot = await emu.create_account("telegram", options={"migrate": {"-100": -1009999}})
    base = f"/telegram/bot{bot.access_token}"
    me = await http.get(f"{base}/getMe")
    assert me.json()["ok"] is True
    assert me.json()["result"]["is_bot"] is True
    sent = await http.post(f"{base}/sendMessage", json={"chat_id": "@brand", "text": "hello post_id=tg1"})
    message = sent.json()["result"]
    assert message["text"] == "hello post_id=tg1"
    assert message["message_id"] == 1
    album = await http.post(
        f"{base}/sendMediaGroup",
        json={
            "chat_id": "@brand",
            "media": [
                {"type": "photo", "media": "https://cdn/1.jpg", "caption": "c"},
                {"type": "photo", "media": "https://cdn/2.jpg"},
            ],
        },
    )
    assert [m["message_id"] for m in album.json()["result"]] == [2, 3]
    posts = await emu.posts(platform="telegram")
    assert [p.remote_id for p in posts] == ["@brand:1", "@brand:2"]

    await emu.set_limits("telegram", account_id=bot.account_id, request_limit=0, request_window_s=30)
    flood = await http.post(f"{base}/sendMessage", json={"chat_id": "@brand", "text": "x"})
    assert flood.status_code == 429
    assert flood.json()["parameters"]["retry_after"] > 0
    assert flood.json()["description"].startswith("Too Many Requests: retry after")
    await emu.set_limits("telegram", account_id=bot.account_id, request_limit=None)
    migrated = await http.post(f"{base}/sendMessage", json={"chat_id": "-100", "text": "x"})
    assert migrated.json()["parameters"]["migrate_to_chat_id"] == -1009999
    unknown = await http.get("/telegram/bot123:abc/getMe")
    assert unknown.status_code == 401
    assert unknown.json() == {
        "ok": False,
        "error_code": 401,
        "description": "Unauthorized",
    }
