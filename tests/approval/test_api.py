"""Every route through the HTTP API against the real Kafka and FerretDB: success, validation,
roles and tenant isolation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pymongo import AsyncMongoClient

from approval.app import create_app
from shared.ids import post_id_for
from shared.mongo import Document
from shared.settings import KafkaSettings, MongoSettings
from tests.approval.conftest import Api, approval_settings, asset_body, auth
from tests.support import until

pytestmark = pytest.mark.integration

ROLES = ("viewer", "editor", "approver", "admin")


@dataclass
class World:
    """One workspace with an account, a pending asset, an approved asset and its post."""

    workspace_id: str
    keys: dict[str, str]
    account_id: str
    pending_id: str
    approved_id: str
    post_id: str
    key_id: str


async def world(api: Api) -> World:
    workspace_id, admin = await api.workspace()
    keys = {role: await api.key(admin, role) for role in ROLES[:3]} | {"admin": admin}
    account = await api.account(admin)

    async def status_event_applied() -> bool:
        # The service reads its own AccountStatusChanged back: wait, so later reads are stable.
        r = await api.client.get(f"/v1/accounts/{account['account_id']}", headers=auth(admin))
        return r.json().get("status_reason") is not None

    await until(status_event_applied, within=30, what="the account's status event to be applied")
    pending = await api.asset(admin, account["account_id"])
    approved = await api.asset(admin, account["account_id"])
    r = await api.client.post(f"/v1/assets/{approved['asset_id']}/approve", json={}, headers=auth(admin))
    assert r.status_code == 200, r.text
    await api.key(admin, "viewer")  # a spare, for the revoke route
    listed = (await api.client.get("/v1/keys", headers=auth(admin))).json()["items"]
    return World(
        workspace_id=workspace_id,
        keys=keys,
        account_id=account["account_id"],
        pending_id=pending["asset_id"],
        approved_id=approved["asset_id"],
        post_id=post_id_for(approved["asset_id"], "ig"),
        key_id=listed[-1]["key_id"],
    )


def routes(w: World) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """(method, path, body, least role) for every authenticated route, aimed at w's data."""
    tokens = {"tokens": {"access_token": "new-access-token-1234"}}
    return [
        ("GET", "/v1/workspace", None, "viewer"),
        ("PATCH", "/v1/workspace", {"name": "Renamed"}, "admin"),
        ("GET", "/v1/keys", None, "admin"),
        ("POST", "/v1/keys", {"name": "k", "role": "viewer"}, "admin"),
        ("DELETE", f"/v1/keys/{w.key_id}", None, "admin"),
        ("GET", "/v1/accounts", None, "viewer"),
        (
            "POST",
            "/v1/accounts",
            {"platform": "x", "handle": "@x", "tokens": {"access_token": "another-token-5678"}},
            "admin",
        ),
        ("GET", f"/v1/accounts/{w.account_id}", None, "viewer"),
        ("PATCH", f"/v1/accounts/{w.account_id}", {"timezone": "Europe/Paris"}, "admin"),
        ("POST", f"/v1/accounts/{w.account_id}/reconnect", tokens, "admin"),
        ("POST", f"/v1/accounts/{w.account_id}/verify", None, "admin"),
        ("POST", "/v1/assets", asset_body(w.account_id), "editor"),
        ("GET", "/v1/assets", None, "viewer"),
        ("GET", f"/v1/assets/{w.pending_id}", None, "viewer"),
        ("POST", f"/v1/assets/{w.pending_id}/versions", asset_body(w.account_id), "editor"),
        ("GET", f"/v1/assets/{w.approved_id}/posts", None, "viewer"),
        ("POST", f"/v1/assets/{w.pending_id}/regenerate", {"feedback": "shorter"}, "approver"),
        ("POST", f"/v1/assets/{w.pending_id}/reject", {"reason": "off brand"}, "approver"),
        ("POST", f"/v1/assets/{w.pending_id}/approve", {}, "approver"),
        ("POST", "/v1/assets/bulk/approve", {"asset_ids": [w.pending_id]}, "approver"),
        ("POST", "/v1/assets/bulk/reject", {"asset_ids": [w.pending_id], "reason": "no"}, "approver"),
        ("POST", "/v1/assets/bulk/delete", {"asset_ids": [w.pending_id]}, "editor"),
        ("POST", "/v1/assets/bulk/restore", {"asset_ids": [w.pending_id]}, "editor"),
        ("GET", "/v1/posts", None, "viewer"),
        ("GET", f"/v1/posts/{w.post_id}", None, "viewer"),
        ("POST", f"/v1/posts/{w.post_id}/publish-now", None, "editor"),
        ("POST", f"/v1/posts/{w.post_id}/reschedule", {"schedule": {"at_utc": "2026-12-24T10:00:00Z"}}, "editor"),
        ("POST", f"/v1/posts/{w.post_id}/cancel", {"reason": "typo"}, "editor"),
        ("POST", f"/v1/posts/{w.post_id}/retry", None, "editor"),
        ("GET", "/v1/calendar?start=2026-11-01T00:00:00Z&end=2027-01-01T00:00:00Z", None, "viewer"),
    ]


async def call(api: Api, method: str, path: str, body: dict[str, Any] | None, key: str | None) -> Any:
    headers = auth(key) if key else {}
    return await api.client.request(method, path, json=body, headers=headers)


async def test_the_route_table_covers_every_route(api: Api) -> None:
    w = World("w", {}, "a", "p", "q", "post", "k")
    covered = {(m, p.split("?")[0]) for m, p, _, _ in routes(w)}
    names = {"key_id": "k", "account_id": "a", "asset_id": "p", "post_id": "post"}
    for route in api.app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/v1") or route.path == "/v1/workspaces":
            continue
        path = route.path
        for name, value in names.items():
            path = path.replace("{" + name + "}", value)
        if "/posts" in path and "assets" in path:
            path = path.replace("/p/", "/q/")
        for method in route.methods or ():
            assert (method, path) in covered, f"{method} {route.path} has no auth/role/tenant test"


async def test_every_route_needs_a_valid_key(api: Api) -> None:
    w = await world(api)
    for method, path, body, _ in routes(w):
        for key in (None, "sp_nope_nope", "garbage", w.keys["admin"] + "x"):
            r = await call(api, method, path, body, key)
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["error"]["code"] == "unauthenticated"


async def test_roles_below_the_least_role_are_forbidden(api: Api) -> None:
    w = await world(api)
    for method, path, body, least in routes(w):
        for role in ROLES[: ROLES.index(least)]:
            r = await call(api, method, path, body, w.keys[role])
            assert r.status_code == 403, (role, method, path, r.text)
            error = r.json()["error"]
            assert error["code"] == "forbidden"
            assert least in error["message"]


async def test_another_workspace_can_neither_read_nor_change_anything(api: Api) -> None:
    a = await world(api)
    b = await world(api)
    before = {
        path: (await api.client.get(path, headers=auth(a.keys["admin"]))).json()
        for path in (f"/v1/assets/{a.pending_id}", f"/v1/accounts/{a.account_id}", f"/v1/posts/{a.post_id}")
    }
    for method, path, body, _ in routes(a):
        r = await call(api, method, path, body, b.keys["admin"])
        if any(i in path for i in (a.key_id, a.account_id, a.pending_id, a.approved_id, a.post_id)) or (
            body and (a.pending_id in str(body) or a.account_id in str(body))
        ):
            assert r.status_code in (404, 422) or (r.status_code == 200 and r.json().get("succeeded") == []), (
                method,
                path,
                r.text,
            )
        else:
            # Lists and workspace routes answer for b's own workspace only.
            text = r.text
            for foreign in (a.workspace_id, a.account_id, a.pending_id, a.approved_id, a.post_id):
                assert foreign not in text, (method, path)
    for path, body in before.items():
        now = (await api.client.get(path, headers=auth(a.keys["admin"]))).json()
        assert now == body, path
    keys = (await api.client.get("/v1/keys", headers=auth(a.keys["admin"]))).json()["items"]
    assert all(k["revoked_at"] is None for k in keys)


async def test_each_route_succeeds_for_its_role(api: Api) -> None:
    w = await world(api)
    expected = {"POST /v1/keys": 201, "POST /v1/accounts": 201, "POST /v1/assets": 201}
    for method, path, body, least in routes(w):
        if path.endswith(("/approve", "/reject", "/regenerate")) and "bulk" not in path:
            continue  # covered below: they consume the pending asset
        if path.endswith("/retry"):
            continue  # needs a failed post, see test_events
        r = await call(api, method, path, body, w.keys[least])
        route = f"{method} {path.split('?')[0]}"
        assert r.status_code == expected.get(route, 202 if "/posts/" in path and method == "POST" else 200) or (
            path.endswith("/verify") and r.status_code == 202
        ), (route, r.text)


async def test_approve_reject_regenerate_and_versions(api: Api) -> None:
    _, admin = await api.workspace()
    account = (await api.account(admin))["account_id"]
    a1 = (await api.asset(admin, account))["asset_id"]
    r = await api.client.post(f"/v1/assets/{a1}/regenerate", json={"feedback": "shorter"}, headers=auth(admin))
    assert r.json()["state"] == "regeneration_requested"
    r = await api.client.post(f"/v1/assets/{a1}/approve", json={}, headers=auth(admin))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "invalid_transition"
    r = await api.client.post(f"/v1/assets/{a1}/versions", json=asset_body(account), headers=auth(admin))
    assert (r.json()["state"], r.json()["version"]) == ("pending_approval", 2)
    r = await api.client.post(f"/v1/assets/{a1}/approve", json={"deselect_targets": ["ig"]}, headers=auth(admin))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "nothing_in_scope"
    r = await api.client.post(f"/v1/assets/{a1}/approve", json={"expected_version": 1}, headers=auth(admin))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "version_mismatch"
    r = await api.client.post(f"/v1/assets/{a1}/reject", json={"reason": "off brand"}, headers=auth(admin))
    assert r.json()["state"] == "rejected"
    r = await api.client.post(f"/v1/posts/{post_id_for(a1, 'ig')}/publish-now", headers=auth(admin))
    assert r.status_code == 404  # rejected content never has posts
    a2 = (await api.asset(admin, account))["asset_id"]
    a3 = (await api.asset(admin, account))["asset_id"]
    r = await api.client.post("/v1/assets/bulk/approve", json={"asset_ids": [a2, a3, a1]}, headers=auth(admin))
    body = r.json()
    assert body["succeeded"] == [a2, a3]
    assert [(f["asset_id"], f["code"]) for f in body["failed"]] == [(a1, "invalid_transition")]
    r = await api.client.get("/v1/assets?state=approved&order=asc&limit=1", headers=auth(admin))
    assert [a["asset_id"] for a in r.json()["items"]] == [a2]
    assert r.json()["next_offset"] == 1
    r = await api.client.get("/v1/assets?state=approved&order=asc&limit=1&offset=1", headers=auth(admin))
    assert [a["asset_id"] for a in r.json()["items"]] == [a3]


async def test_validation_errors_name_target_and_rule(api: Api) -> None:
    _, admin = await api.workspace()
    x = (await api.account(admin, "x"))["account_id"]
    body = asset_body(x, caption="y" * 300)
    body["targets"] = [{"target_id": "tweet", "account_id": x, "format": "post"}]
    body["media"] = []
    r = await api.client.post("/v1/assets", json=body, headers=auth(admin))
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["violations"] == [
        {"rule": "caption_too_long", "target_id": "tweet", "message": error["violations"][0]["message"]}
    ]
    assert "tweet" in error["message"]
    assert "280" in error["message"]
    r = await api.client.post("/v1/assets", json={"targets": []}, headers=auth(admin))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"
    r = await api.client.post(
        "/v1/assets",
        json=asset_body(x, schedule={"publish_now": True, "at_utc": "2026-01-01T00:00:00Z"}),
        headers=auth(admin),
    )
    assert r.status_code == 422
    assert "exactly one" in r.json()["error"]["message"]
    r = await api.client.patch("/v1/workspace", json={"timezone": "Nowhere/City"}, headers=auth(admin))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_timezone"
    r = await api.client.get("/v1/calendar?start=2026-01-01T00:00:00Z&end=2027-01-01T00:00:00Z", headers=auth(admin))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "range_too_large"


async def test_publishing_opt_in_and_bootstrap_token(api: Api) -> None:
    r = await api.client.post("/v1/workspaces", json={"name": "x"}, headers={"X-Bootstrap-Token": "wrong"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "bootstrap_refused"
    _, admin = await api.workspace(publishing=False)
    account = (await api.account(admin))["account_id"]
    asset = (await api.asset(admin, account))["asset_id"]
    r = await api.client.post(f"/v1/assets/{asset}/approve", json={}, headers=auth(admin))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "publishing_disabled"


async def test_soft_delete_hides_and_restore_brings_back(api: Api) -> None:
    _, admin = await api.workspace()
    account = (await api.account(admin))["account_id"]
    asset = (await api.asset(admin, account))["asset_id"]
    r = await api.client.post("/v1/assets/bulk/delete", json={"asset_ids": [asset]}, headers=auth(admin))
    assert r.json() == {"succeeded": [asset], "failed": []}
    assert (await api.client.get(f"/v1/assets/{asset}", headers=auth(admin))).status_code == 404
    deleted = (await api.client.get("/v1/assets?deleted=true", headers=auth(admin))).json()["items"]
    assert [a["asset_id"] for a in deleted] == [asset]
    await api.client.post("/v1/assets/bulk/restore", json={"asset_ids": [asset]}, headers=auth(admin))
    assert (await api.client.get(f"/v1/assets/{asset}", headers=auth(admin))).status_code == 200


async def test_the_workspace_route_tells_other_services_who_the_caller_is(api: Api) -> None:
    w = await world(api)
    for role in ("viewer", "editor", "approver", "admin"):
        body = (await api.client.get("/v1/workspace", headers=auth(w.keys[role]))).json()
        assert body["workspace_id"] == w.workspace_id
        assert body["caller_role"] == role
        assert w.keys[role].startswith(f"sp_{body['caller_key_id']}_")


async def test_metrics_count_accounts_whose_token_dies_without_a_refresh_token(
    kafka_settings: KafkaSettings, mongo_settings: MongoSettings, mongo: AsyncMongoClient[Document], unique: str
) -> None:
    settings = approval_settings(kafka_settings, mongo_settings, unique).model_copy(
        update={"token_expiry_check_seconds": 0.2}
    )
    app = create_app(settings)
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://approval") as client,
        ):
            local = Api(app, client, settings)
            _, admin = await local.workspace()
            for refresh in (None, "a-refresh-token"):
                tokens = {"access_token": "li-access", "refresh_token": refresh, "expires_at": soon}
                await local.account(admin, "linkedin", tokens=tokens)

            async def counted() -> bool:
                text = (await client.get("/metrics")).text
                return 'socialpub_accounts_tokens_expiring{platform="linkedin"} 1.0' in text

            await until(counted, within=10, what="the expiring-token gauge counts the account without a refresh")
    finally:
        await mongo.drop_database(settings.database)
        await mongo.drop_database(settings.credentials.database)
