"""The editorial workflow through the HTTP API on the real Kafka and FerretDB: drafts never
reach the scheduler, autopilot within its limits, slots and gaps, publishing scopes, and media
probed from a local HTTP server (a JPEG made with Pillow, an MP4 made with ffmpeg, at test time)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pymongo import AsyncMongoClient

from approval.adapters.media_probe import MediaProbeSettings
from approval.app import create_app
from shared.events import AssetApproved
from shared.mongo import Document
from shared.settings import KafkaSettings, MongoSettings
from shared.topics import ASSETS_APPROVED
from tests.approval.conftest import Api, approval_settings, asset_body, auth
from tests.support import TopicWatcher

pytestmark = pytest.mark.integration


@pytest.fixture
async def approved_events(api: Api) -> AsyncIterator[TopicWatcher]:
    watcher = TopicWatcher(api.settings.kafka.bootstrap_servers, api.settings.kafka.topic_prefix, [ASSETS_APPROVED])
    await watcher.start()
    yield watcher
    await watcher.stop()


async def test_a_draft_is_never_queued_or_scheduled_and_edits_follow_the_workspace_preference(
    api: Api, approved_events: TopicWatcher
) -> None:
    _, admin = await api.workspace()
    account_id = (await api.account(admin))["account_id"]
    r = await api.client.post("/v1/assets", json=asset_body(account_id, draft=True), headers=auth(admin))
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["state"] == "draft"
    board = (await api.client.get("/v1/assets", headers=auth(admin))).json()["items"]
    assert board == []
    r = await api.client.post(f"/v1/assets/{draft['asset_id']}/approve", json={}, headers=auth(admin))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "invalid_transition")

    r = await api.client.patch("/v1/workspace", json={"pending_edits": "back_to_draft"}, headers=auth(admin))
    assert r.json()["pending_edits"] == "back_to_draft"
    r = await api.client.post(f"/v1/assets/{draft['asset_id']}/submit", json={}, headers=auth(admin))
    assert r.json()["state"] == "pending_approval"
    edited = asset_body(account_id, caption="Launch day, take two")
    r = await api.client.post(f"/v1/assets/{draft['asset_id']}/versions", json=edited, headers=auth(admin))
    assert (r.json()["state"], r.json()["version"]) == ("draft", 2)
    r = await api.client.get(f"/v1/assets/{draft['asset_id']}/versions", headers=auth(admin))
    assert [(v["version"], v["caption"]) for v in r.json()["versions"]] == [
        (1, "Launch day #new"),
        (2, "Launch day, take two"),
    ]
    # A control asset that is approved proves the topic is read: the draft's event never came.
    control = await api.asset(admin, account_id)
    r = await api.client.post(f"/v1/assets/{control['asset_id']}/approve", json={}, headers=auth(admin))
    assert r.status_code == 200, r.text
    await approved_events.wait_for(AssetApproved, asset_id=control["asset_id"])
    assert approved_events.events(AssetApproved, asset_id=draft["asset_id"]) == []


async def test_autopilot_approves_within_limits_only_admins_change_it_and_changes_are_audited(
    api: Api, approved_events: TopicWatcher
) -> None:
    _, admin = await api.workspace()
    approver = await api.key(admin, "approver")
    account_id = (await api.account(admin))["account_id"]
    policy = {
        "scope": "account",
        "scope_id": account_id,
        "mode": "automatic",
        "sources": ["generator-x"],
        "formats": ["reel"],
        "daily_cap": 1,
    }
    r = await api.client.put("/v1/approval-policies", json=policy, headers=auth(approver))
    assert r.status_code == 403
    r = await api.client.put("/v1/approval-policies", json={**policy, "sources": []}, headers=auth(admin))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request")
    r = await api.client.put("/v1/approval-policies", json=policy, headers=auth(admin))
    assert r.status_code == 200, r.text

    auto = await api.asset(admin, account_id, source="generator-x")
    assert (auto["state"], auto["approved_by_policies"]) == ("approved", [f"account:{account_id}"])
    (event,) = await approved_events.wait_for(AssetApproved, asset_id=auto["asset_id"])
    assert (event.auto_approved, event.approval_policies) == (True, [f"account:{account_id}"])

    over_cap = await api.asset(admin, account_id, source="generator-x")
    assert over_cap["state"] == "pending_approval"
    assert "daily cap of 1" in over_cap["pending_reason"]

    changes = (await api.client.get("/v1/approval-policies/changes", headers=auth(admin))).json()["items"]
    assert [(c["policy_id"], c["before"], c["after"]["daily_cap"]) for c in changes] == [
        (f"account:{account_id}", None, 1)
    ]
    assert (await api.client.get("/v1/approval-policies/changes", headers=auth(approver))).status_code == 403


async def test_slots_fill_gaps_show_and_an_incompatible_format_is_refused(api: Api) -> None:
    _, admin = await api.workspace()
    account_id = (await api.account(admin))["account_id"]
    soon = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    slots = []
    for brief in ("teaser", "recap"):
        r = await api.client.post(
            "/v1/slots",
            json={"account_id": account_id, "at": soon, "format": "reel", "brief": brief},
            headers=auth(admin),
        )
        assert r.status_code == 201, r.text
        slots.append(r.json())
    asset = await api.asset(admin, account_id)
    r = await api.client.post(
        f"/v1/slots/{slots[0]['slot_id']}/fill", json={"asset_id": asset["asset_id"]}, headers=auth(admin)
    )
    assert r.status_code == 200, r.text
    assert r.json()["asset"]["schedule"]["at_utc"] is not None
    gaps = (await api.client.get("/v1/slots/gaps?horizon_hours=24", headers=auth(admin))).json()["items"]
    assert [g["brief"] for g in gaps] == ["recap"]
    start, end = datetime.now(UTC), datetime.now(UTC) + timedelta(days=1)
    window = {"start": start.isoformat(), "end": end.isoformat()}
    calendar = (await api.client.get("/v1/calendar", params=window, headers=auth(admin))).json()
    on_calendar = {s["brief"]: s["asset_id"] for s in calendar["slots"]}
    assert on_calendar == {"teaser": asset["asset_id"], "recap": None}  # the filled slot and the gap

    r = await api.client.patch(f"/v1/slots/{slots[1]['slot_id']}", json={"format": "post"}, headers=auth(admin))
    assert r.status_code == 422
    assert r.json()["error"]["violations"][0]["rule"] == "format_unsupported"
    assert "instagram does not offer post" in r.json()["error"]["message"]


async def test_an_account_connected_without_the_write_scope_cannot_publish(api: Api) -> None:
    _, admin = await api.workspace()
    tokens = {"access_token": "read-only-token-123", "scopes": ["instagram_basic"]}
    read_only = await api.account(admin, tokens=tokens)
    assert (read_only["can_publish"], read_only["scopes"]) == (False, ["instagram_basic"])
    assert "instagram_content_publish" in read_only["publish_scopes"]
    tokens = {"access_token": "bot-token-123", "scopes": []}
    assert (await api.account(admin, platform="telegram", tokens=tokens))["can_publish"] is True


# ---- media probing against a local HTTP server


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("media")
    Image.new("RGB", (1080, 1350), "navy").save(root / "portrait.jpg", "JPEG")
    Image.new("RGB", (900, 300), "teal").save(root / "wide.jpg", "JPEG")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=4:size=180x320:rate=10",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(root / "clip.mp4")],
        check=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
async def probing_api(
    kafka_settings: KafkaSettings, mongo_settings: MongoSettings, mongo: AsyncMongoClient[Document], unique: str
) -> AsyncIterator[Api]:
    settings = approval_settings(kafka_settings, mongo_settings, unique).model_copy(
        update={"media_probe": MediaProbeSettings(timeout_seconds=10)}
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://approval") as client:
                yield Api(app, client, settings)
    finally:
        await mongo.drop_database(settings.database)
        await mongo.drop_database(settings.credentials.database)


def story(account_id: str, media: dict[str, Any]) -> dict[str, Any]:
    return asset_body(
        account_id, media=[media], targets=[{"target_id": "ig", "account_id": account_id, "format": "story"}]
    )


async def test_probing_measures_media_and_rejects_a_wrong_aspect_ratio_or_an_unreachable_url(
    probing_api: Api, media_server: str
) -> None:
    api = probing_api
    _, admin = await api.workspace()
    account_id = (await api.account(admin))["account_id"]

    ok = await api.asset(admin, account_id, media=[{"url": f"{media_server}/clip.mp4", "type": "video"}])
    assert ok["media"][0]["duration_seconds"] == pytest.approx(4, abs=0.2)
    assert (ok["media"][0]["width"], ok["media"][0]["height"]) == (180, 320)
    r = await api.client.post(f"/v1/assets/{ok['asset_id']}/approve", json={}, headers=auth(admin))
    assert r.status_code == 200, r.text

    portrait = await api.asset(
        admin, account_id, **story(account_id, {"url": f"{media_server}/portrait.jpg", "type": "image"})
    )
    assert (portrait["media"][0]["mime_type"], portrait["media"][0]["width"]) == ("image/jpeg", 1080)

    wide = story(account_id, {"url": f"{media_server}/wide.jpg", "type": "image"})
    r = await api.client.post("/v1/assets", json=wide, headers=auth(admin))
    assert r.status_code == 422
    assert [(v["rule"], v["target_id"]) for v in r.json()["error"]["violations"]] == [("aspect_ratio", "ig")]

    missing = story(account_id, {"url": f"{media_server}/gone.jpg", "type": "image"})
    r = await api.client.post("/v1/assets", json=missing, headers=auth(admin))
    assert r.status_code == 422
    (violation,) = r.json()["error"]["violations"]
    assert (violation["rule"], violation["target_id"]) == ("media_unreachable", "ig")
    assert f"{media_server}/gone.jpg" in violation["message"]
    assert "HTTP 404" in violation["message"]
