from __future__ import annotations

import httpx

from tests.emulator.conftest import auth
from tools.emulator.client import AccountInfo, EmulatorClient

INIT = "/tiktok/v2/post/publish/video/init/"
STATUS = "/tiktok/v2/post/publish/status/fetch/"


def pull(title: str, privacy: str) -> dict[str, object]:
    return {
        "post_info": {"title": title, "privacy_level": privacy},
        "source_info": {"source": "PULL_FROM_URL", "video_url": "https://cdn.example/v.mp4"},
    }


async def status_of(http: httpx.AsyncClient, account: AccountInfo, publish_id: str) -> dict[str, object]:
    response = await http.post(STATUS, json={"publish_id": publish_id}, headers=auth(account))
    assert response.json()["error"]["code"] == "ok", response.text
    data: dict[str, object] = response.json()["data"]
    return data


async def test_tiktok_direct_post_processes_then_completes(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    await emu.set_processing(10_000, platform="tiktok")
    account = await emu.create_account("tiktok")
    info = await http.post("/tiktok/v2/post/publish/creator_info/query/", headers=auth(account))
    assert "PUBLIC_TO_EVERYONE" in info.json()["data"]["privacy_level_options"]
    init = await http.post(INIT, json=pull("dance post_id=t1", "PUBLIC_TO_EVERYONE"), headers=auth(account))
    assert init.json()["error"]["code"] == "ok"
    publish_id = init.json()["data"]["publish_id"]
    assert (await status_of(http, account, publish_id))["status"] == "PROCESSING_DOWNLOAD"
    await emu.advance_clock(11)
    done = await status_of(http, account, publish_id)
    assert done["status"] == "PUBLISH_COMPLETE"
    post_ids = done["publicaly_available_post_id"]
    assert isinstance(post_ids, list)
    assert len(post_ids) == 1
    videos = await http.post(
        "/tiktok/v2/video/query/",
        params={"fields": "id,view_count,like_count"},
        json={"filters": {"video_ids": [str(post_ids[0])]}},
        headers=auth(account),
    )
    video = videos.json()["data"]["videos"][0]
    assert video["id"] == str(post_ids[0])
    assert video["view_count"] > 0


async def test_tiktok_unaudited_app_posts_privately(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    account = await emu.create_account("tiktok", audited=False)
    info = await http.post("/tiktok/v2/post/publish/creator_info/query/", headers=auth(account))
    assert info.json()["data"]["privacy_level_options"] == ["SELF_ONLY"]
    public = await http.post(INIT, json=pull("x", "PUBLIC_TO_EVERYONE"), headers=auth(account))
    assert public.status_code == 403
    assert public.json()["error"]["code"] == "unaudited_client_can_only_post_to_private_accounts"
    private = await http.post(INIT, json=pull("x", "SELF_ONLY"), headers=auth(account))
    done = await status_of(http, account, private.json()["data"]["publish_id"])
    assert done == {"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [], "downloaded_bytes": 0}
    [post] = await emu.posts(platform="tiktok")
    assert post.privacy == "SELF_ONLY"
    assert post.extra["audited"] is False


async def test_tiktok_file_upload_inbox_and_photos(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    account = await emu.create_account("tiktok")
    init = await http.post(
        INIT,
        json={
            "post_info": {"title": "file", "privacy_level": "SELF_ONLY"},
            "source_info": {"source": "FILE_UPLOAD", "video_size": 10, "chunk_size": 5, "total_chunk_count": 2},
        },
        headers=auth(account),
    )
    data = init.json()["data"]
    assert (await status_of(http, account, data["publish_id"]))["status"] == "PROCESSING_UPLOAD"
    first = await http.put(data["upload_url"], content=b"01234", headers={"Content-Range": "bytes 0-4/10"})
    assert first.status_code == 206
    assert await emu.posts() == []
    last = await http.put(data["upload_url"], content=b"56789", headers={"Content-Range": "bytes 5-9/10"})
    assert last.status_code == 201
    assert (await status_of(http, account, data["publish_id"]))["status"] == "PUBLISH_COMPLETE"

    inbox = await http.post(
        "/tiktok/v2/post/publish/inbox/video/init/",
        json={"source_info": {"source": "PULL_FROM_URL", "video_url": "https://cdn/v.mp4"}},
        headers=auth(account),
    )
    assert (await status_of(http, account, inbox.json()["data"]["publish_id"]))["status"] == "SEND_TO_USER_INBOX"
    photos = await http.post(
        "/tiktok/v2/post/publish/content/init/",
        json={
            "post_info": {"title": "pics", "privacy_level": "SELF_ONLY"},
            "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0, "photo_images": ["https://cdn/1.jpg"]},
            "post_mode": "DIRECT_POST",
            "media_type": "PHOTO",
        },
        headers=auth(account),
    )
    assert photos.json()["error"]["code"] == "ok"
    assert sorted(p.status for p in await emu.posts()) == ["inbox", "live", "live"]


async def test_tiktok_errors_and_rotation(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    account = await emu.create_account("tiktok")
    await emu.set_limits("tiktok", account_id=account.account_id, publish_limit=0)
    capped = await http.post(INIT, json=pull("x", "SELF_ONLY"), headers=auth(account))
    assert capped.status_code == 200  # only error.code says it failed
    assert capped.json()["error"]["code"] == "spam_risk_too_many_posts"
    await emu.add_fault("rate_limit", platform="tiktok", applies_to="any", count=1)
    limited = await http.post("/tiktok/v2/post/publish/creator_info/query/", headers=auth(account))
    assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limit_exceeded")
    bad = await http.get("/tiktok/v2/user/info/", headers={"Authorization": "Bearer nope"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "access_token_invalid")

    token = await http.post(
        "/tiktok/v2/oauth/token/",
        data={
            "client_key": "k",
            "client_secret": "s",
            "grant_type": "refresh_token",
            "refresh_token": account.refresh_token,
        },
    )
    assert token.json()["refresh_token"] != account.refresh_token
    assert token.json()["open_id"] == account.account_id
    again = await http.post(
        "/tiktok/v2/oauth/token/", data={"grant_type": "refresh_token", "refresh_token": account.refresh_token}
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    user = await http.get(
        "/tiktok/v2/user/info/",
        params={"fields": "open_id,display_name"},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert user.json()["data"]["user"]["open_id"] == account.account_id


async def start_session(http: httpx.AsyncClient, account: AccountInfo, title: str, total: int) -> str:
    response = await http.post(
        "/youtube/upload/youtube/v3/videos",
        params={"uploadType": "resumable", "part": "snippet,status"},
        json={"snippet": {"title": title, "description": "desc"}, "status": {"privacyStatus": "public"}},
        headers=auth(account) | {"X-Upload-Content-Length": str(total), "X-Upload-Content-Type": "video/mp4"},
    )
    assert response.status_code == 200, response.text
    return response.headers["location"]


async def test_youtube_resumable_upload_probe_and_stats(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    channel = await emu.create_account("youtube")
    session = await start_session(http, channel, "clip post_id=y1", 10)
    partial = await http.put(session, content=b"01234", headers={"Content-Range": "bytes 0-4/10"})
    assert partial.status_code == 308
    assert partial.headers["range"] == "bytes=0-4"
    probe = await http.put(session, headers={"Content-Range": "bytes */10"})
    assert probe.status_code == 308
    assert probe.headers["range"] == "bytes=0-4"
    done = await http.put(session, content=b"56789", headers={"Content-Range": "bytes 5-9/10"})
    assert done.status_code == 200
    video_id = done.json()["id"]
    assert done.json()["snippet"]["title"] == "clip post_id=y1"
    probe = await http.put(session, headers={"Content-Range": "bytes */10"})
    assert probe.status_code == 200
    assert probe.json()["id"] == video_id
    stats = await http.get(
        "/youtube/youtube/v3/videos", params={"part": "statistics", "id": video_id}, headers=auth(channel)
    )
    assert int(stats.json()["items"][0]["statistics"]["viewCount"]) > 0
    mine = await http.get(
        "/youtube/youtube/v3/channels", params={"mine": "true", "part": "id,snippet"}, headers=auth(channel)
    )
    assert mine.json()["items"][0]["id"] == channel.account_id
    assert len(await emu.posts()) == 1


async def test_youtube_quota_errors_token_and_unverified(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    channel = await emu.create_account("youtube", audited=False)
    tiny = await http.put(await start_session(http, channel, "t", 10), content=b"placeholder-less")
    assert tiny.status_code == 200
    assert tiny.json()["status"]["privacyStatus"] == "private"  # unverified projects upload privately
    await emu.set_limits("youtube", account_id=channel.account_id, publish_limit=1)
    refused = await http.put(await start_session(http, channel, "u", 1), content=b"x")
    assert refused.status_code == 400
    assert refused.json()["error"]["errors"][0]["reason"] == "uploadLimitExceeded"
    await emu.set_limits("youtube", account_id=channel.account_id, request_limit=0)
    quota = await http.get("/youtube/youtube/v3/channels", params={"mine": "true"}, headers=auth(channel))
    assert quota.status_code == 403
    assert quota.json()["error"]["errors"][0]["reason"] == "quotaExceeded"
    token = await http.post(
        "/youtube/token", data={"grant_type": "refresh_token", "refresh_token": channel.refresh_token}
    )
    assert token.status_code == 200
    assert "refresh_token" not in token.json()
    await emu.expire_token("youtube", channel.account_id)
    expired = await http.get("/youtube/youtube/v3/videos", params={"id": "x"}, headers=auth(channel))
    assert expired.status_code == 401
    assert expired.json()["error"]["errors"][0]["reason"] == "authError"
