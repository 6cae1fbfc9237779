from __future__ import annotations

import httpx

from tests.emulator.conftest import auth
from tools.emulator.client import EmulatorClient


async def test_facebook_feed_duplicate_and_reads(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    page = await emu.create_account("facebook", username="Brand Page")
    feed = f"/facebook/{page.account_id}/feed"
    created = await http.post(feed, data={"message": "hello post_id=f1", "access_token": page.access_token})
    assert created.status_code == 200
    post_id = created.json()["id"]
    assert post_id.startswith(f"{page.account_id}_")

    repeat = await http.post(feed, data={"message": "hello post_id=f1", "access_token": page.access_token})
    error = repeat.json()["error"]
    assert (repeat.status_code, error["code"], error["error_user_title"]) == (400, 506, "Duplicate Post")

    listed = await http.get(f"/facebook/{page.account_id}/published_posts", headers=auth(page))
    assert [p["id"] for p in listed.json()["data"]] == [post_id]
    insights = await http.get(
        f"/facebook/{post_id}/insights", params={"metric": "post_total_media_view_unique"}, headers=auth(page)
    )
    assert insights.json()["data"][0]["values"][0]["value"] > 0
    me = await http.get("/facebook/me", headers=auth(page))
    assert me.json()["id"] == page.account_id
    assert len(await emu.posts(platform="facebook")) == 1


async def test_facebook_multi_photo_and_reel(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    page = await emu.create_account("facebook")
    photos = [
        (
            await http.post(
                f"/facebook/{page.account_id}/photos",
                data={"url": f"https://cdn/{n}.jpg", "published": "false"},
                headers=auth(page),
            )
        ).json()["id"]
        for n in range(2)
    ]
    assert await emu.posts() == []  # unpublished photos are not posts
    feed = await http.post(
        f"/facebook/{page.account_id}/feed",
        json={"message": "album", "attached_media": [{"media_fbid": p} for p in photos]},
        headers=auth(page),
    )
    assert feed.status_code == 200

    start = await http.post(
        f"/facebook/{page.account_id}/video_reels", data={"upload_phase": "start"}, headers=auth(page)
    )
    video_id, upload_url = start.json()["video_id"], start.json()["upload_url"]
    early = await http.post(
        f"/facebook/{page.account_id}/video_reels",
        data={"upload_phase": "finish", "video_id": video_id, "video_state": "PUBLISHED"},
        headers=auth(page),
    )
    assert early.status_code == 400
    uploaded = await http.post(
        upload_url, headers={"Authorization": f"OAuth {page.access_token}", "file_url": "https://cdn/v.mp4"}
    )
    assert uploaded.json() == {"success": True}
    finish = await http.post(
        f"/facebook/{page.account_id}/video_reels",
        data={"upload_phase": "finish", "video_id": video_id, "video_state": "PUBLISHED", "description": "reel"},
        headers=auth(page),
    )
    assert finish.json() == {"success": True}
    video = await http.get(f"/facebook/{video_id}", params={"fields": "post_id,permalink_url"}, headers=auth(page))
    assert video.json()["post_id"].startswith(page.account_id)
    assert {p.media_type for p in await emu.posts()} == {"CAROUSEL", "REELS"}


async def test_facebook_photo_and_video_stories(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    page = await emu.create_account("facebook")
    photo = await http.post(
        f"/facebook/{page.account_id}/photos",
        data={"url": "https://cdn/s.jpg", "published": "false"},
        headers=auth(page),
    )
    photo_id = photo.json()["id"]
    story = await http.post(
        f"/facebook/{page.account_id}/photo_stories", data={"photo_id": photo_id}, headers=auth(page)
    )
    assert story.json()["success"] is True
    assert story.json()["post_id"].startswith(f"{page.account_id}_")
    reused = await http.post(
        f"/facebook/{page.account_id}/photo_stories", data={"photo_id": photo_id}, headers=auth(page)
    )
    assert (reused.status_code, reused.json()["error"]["code"]) == (400, 100)  # one story per photo

    start = await http.post(
        f"/facebook/{page.account_id}/video_stories", data={"upload_phase": "start"}, headers=auth(page)
    )
    video_id, upload_url = start.json()["video_id"], start.json()["upload_url"]
    finish = {"upload_phase": "finish", "video_id": video_id}
    early = await http.post(f"/facebook/{page.account_id}/video_stories", data=finish, headers=auth(page))
    assert early.status_code == 400
    await http.post(
        upload_url, headers={"Authorization": f"OAuth {page.access_token}", "file_url": "https://cdn/s.mp4"}
    )
    video_story = await http.post(f"/facebook/{page.account_id}/video_stories", data=finish, headers=auth(page))
    assert video_story.json()["success"] is True
    again = await http.post(f"/facebook/{page.account_id}/video_stories", data=finish, headers=auth(page))
    assert again.status_code == 400  # an upload is published once

    stories = (await http.get(f"/facebook/{page.account_id}/stories", headers=auth(page))).json()["data"]
    assert [(s["media_type"], s["media_id"], s["status"]) for s in stories] == [
        ("video", video_id, "PUBLISHED"),
        ("photo", photo_id, "PUBLISHED"),
    ]
    assert stories[0]["post_id"] == video_story.json()["post_id"]
    feed = await http.get(f"/facebook/{page.account_id}/published_posts", headers=auth(page))
    assert feed.json()["data"] == []  # stories are not feed posts
    posts = await emu.posts(platform="facebook")
    assert sorted(p.text for p in posts) == ["https://cdn/s.jpg", "https://cdn/s.mp4"]
    assert (await emu.stats()).duplicates == 0


async def test_x_tweet_headers_duplicate_and_timeline(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    user = await emu.create_account("x", username="brand")
    await emu.set_limits("x", account_id=user.account_id, publish_limit=2, request_limit=50)
    created = await http.post("/x/2/tweets", json={"text": "hello post_id=x1"}, headers=auth(user))
    assert created.status_code == 201
    tweet_id = created.json()["data"]["id"]
    assert created.json()["data"]["text"] == "hello post_id=x1"
    assert created.headers["x-rate-limit-limit"] == "50"
    assert created.headers["x-rate-limit-remaining"] == "49"
    assert created.headers["x-user-limit-24hour-limit"] == "2"
    assert created.headers["x-user-limit-24hour-remaining"] == "1"
    assert int(created.headers["x-user-limit-24hour-reset"]) > int(created.headers["x-rate-limit-reset"]) - 86_400

    duplicate = await http.post("/x/2/tweets", json={"text": "hello post_id=x1"}, headers=auth(user))
    assert duplicate.status_code == 403
    assert duplicate.json()["detail"] == "You are not allowed to create a Tweet with duplicate content."
    assert "data" not in duplicate.json()

    assert (await http.post("/x/2/tweets", json={"text": "second"}, headers=auth(user))).status_code == 201
    capped = await http.post("/x/2/tweets", json={"text": "third"}, headers=auth(user))
    assert capped.status_code == 429
    assert capped.headers["x-user-limit-24hour-remaining"] == "0"

    timeline = await http.get(f"/x/2/users/{user.account_id}/tweets", headers=auth(user))
    assert [t["text"] for t in timeline.json()["data"]] == ["second", "hello post_id=x1"]
    metrics = await http.get(f"/x/2/tweets/{tweet_id}", params={"tweet.fields": "public_metrics"}, headers=auth(user))
    assert metrics.json()["data"]["public_metrics"]["impression_count"] > 0
    missing = await http.get("/x/2/tweets/1", headers=auth(user))
    assert missing.status_code == 200
    assert missing.json()["errors"][0]["title"] == "Not Found Error"
    me = await http.get("/x/2/users/me", headers=auth(user))
    assert me.json()["data"]["username"] == "brand"


async def test_x_request_window_429(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    user = await emu.create_account("x")
    await emu.set_limits("x", account_id=user.account_id, request_limit=2, request_window_s=900)
    assert (await http.get("/x/2/users/me", headers=auth(user))).status_code == 200
    assert (await http.get("/x/2/users/me", headers=auth(user))).status_code == 200
    limited = await http.get("/x/2/users/me", headers=auth(user))
    assert limited.status_code == 429
    assert limited.json()["title"] == "Too Many Requests"
    assert limited.headers["x-rate-limit-remaining"] == "0"
    await emu.advance_clock(900)
    assert (await http.get("/x/2/users/me", headers=auth(user))).status_code == 200


async def test_x_media_upload_then_tweet(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    await emu.set_processing(3000, platform="x")
    user = await emu.create_account("x")
    init = await http.post(
        "/x/2/media/upload/initialize",
        json={"media_type": "video/mp4", "total_bytes": 10, "media_category": "tweet_video"},
        headers=auth(user),
    )
    media_id = init.json()["data"]["id"]
    await http.post(f"/x/2/media/upload/{media_id}/append", content=b"0123456789", headers=auth(user))
    final = await http.post(f"/x/2/media/upload/{media_id}/finalize", headers=auth(user))
    assert final.json()["data"]["processing_info"]["state"] == "pending"
    early = await http.post("/x/2/tweets", json={"text": "v", "media": {"media_ids": [media_id]}}, headers=auth(user))
    assert early.status_code == 400
    await emu.advance_clock(4)
    status = await http.get("/x/2/media/upload", params={"command": "STATUS", "media_id": media_id}, headers=auth(user))
    assert status.json()["data"]["processing_info"]["state"] == "succeeded"
    tweet = await http.post("/x/2/tweets", json={"text": "v", "media": {"media_ids": [media_id]}}, headers=auth(user))
    assert tweet.status_code == 201
    assert (await emu.posts())[0].media_type == "VIDEO"


async def test_x_refresh_tokens_rotate(http: httpx.AsyncClient, emu: EmulatorClient) -> None:
    user = await emu.create_account("x")
    first = await http.post(
        "/x/2/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": user.refresh_token, "client_id": "c"}
    )
    assert first.status_code == 200
    body = first.json()
    assert body["refresh_token"] != user.refresh_token
    assert body["expires_in"] == 7200
    reused = await http.post(
        "/x/2/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": user.refresh_token}
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_request"
    second = await http.post(
        "/x/2/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert second.status_code == 200
    assert (
        await http.get("/x/2/users/me", headers={"Authorization": f"Bearer {second.json()['access_token']}"})
    ).status_code == 200

    await emu.expire_token("x", user.account_id, "both")
    expired = await http.get("/x/2/users/me", headers={"Authorization": f"Bearer {second.json()['access_token']}"})
    assert expired.status_code == 401
    assert expired.json()["title"] == "Unauthorized"
