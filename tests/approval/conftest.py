"""The approval service in-process against the real Kafka and MongoDB-compatible server, isolated
by a unique topic prefix and unique databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from approval.adapters.media_probe import MediaProbeSettings
from approval.app import create_app
from approval.settings import ApprovalSettings
from shared.credentials import CredentialsSettings
from shared.mongo import Document
from shared.settings import KafkaSettings, LogSettings, MongoSettings
from tests.support import ServiceProcess

BOOTSTRAP = "bootstrap-secret-for-tests"
FERNET_KEY = "xY1mUFnZ9hB0xVdM4Ct8kHxzJj7hK8QyXW0t8nG5lqE="


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    settings: ApprovalSettings

    async def workspace(self, name: str = "Agency", *, publishing: bool = True) -> tuple[str, str]:
        """A new workspace: (workspace_id, admin key)."""
        response = await self.client.post(
            "/v1/workspaces",
            json={"name": name, "timezone": "Europe/Berlin"},
            headers={"X-Bootstrap-Token": BOOTSTRAP},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        key = body["api_key"]
        if publishing:
            r = await self.client.patch("/v1/workspace", json={"publishing_enabled": True}, headers=auth(key))
            assert r.status_code == 200, r.text
        return body["workspace"]["workspace_id"], key

    async def key(self, admin: str, role: str) -> str:
        r = await self.client.post("/v1/keys", json={"name": role, "role": role}, headers=auth(admin))
        assert r.status_code == 201, r.text
        return str(r.json()["api_key"])

    async def account(self, admin: str, platform: str = "instagram", **extra: Any) -> dict[str, Any]:
        body = {
            "platform": platform,
            "handle": "@brand",
            "timezone": "Asia/Tokyo",
            "tokens": {"access_token": ACCESS, "refresh_token": REFRESH, "scopes": ["publish"]},
            **extra,
        }
        r = await self.client.post("/v1/accounts", json=body, headers=auth(admin))
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    async def asset(self, key: str, account_id: str, **extra: Any) -> dict[str, Any]:
        r = await self.client.post("/v1/assets", json=asset_body(account_id, **extra), headers=auth(key))
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result


ACCESS = "IGQVJ-access-token-plaintext-0001"
REFRESH = "IGQVJ-refresh-token-plaintext-0002"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def asset_body(account_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "caption": "Launch day #new",
        "media": [{"url": "https://cdn.example/v.mp4", "type": "video", "duration_seconds": 20}],
        "targets": [{"target_id": "ig", "account_id": account_id, "format": "reel"}],
        "schedule": {"local_time": "2026-12-01T09:00:00"},
        "campaign": "spring",
        **extra,
    }


def approval_settings(kafka: KafkaSettings, mongo: MongoSettings, unique: str) -> ApprovalSettings:
    return ApprovalSettings(
        kafka=kafka.model_copy(update={"topic_prefix": f"t{unique}."}),
        mongo=mongo.model_copy(update={"database": f"test_approval_{unique}"}),
        credentials=CredentialsSettings(database=f"test_credentials_{unique}", keys=[SecretStr(FERNET_KEY)]),
        bootstrap_token=SecretStr(BOOTSTRAP),
        log=LogSettings(level="INFO", json_output=True),
        # The shared asset bodies name media on hosts that do not exist; the probing tests switch it on.
        media_probe=MediaProbeSettings(enabled=False),
    )


@pytest.fixture
async def api(
    kafka_settings: KafkaSettings,
    mongo_settings: MongoSettings,
    mongo: AsyncMongoClient[Document],
    unique: str,
) -> AsyncIterator[Api]:
    settings = approval_settings(kafka_settings, mongo_settings, unique)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://approval") as client:
                yield Api(app, client, settings)
    finally:
        await mongo.drop_database(settings.database)
        await mongo.drop_database(settings.credentials.database)


@pytest.fixture
def service(
    kafka_settings: KafkaSettings, mongo_settings: MongoSettings, unique: str, tmp_path: Path
) -> Iterator[ServiceProcess]:
    env = {
        "SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "SOCIALPUB_KAFKA__PARTITIONS": "2",
        "SOCIALPUB_KAFKA__TOPIC_PREFIX": f"f{unique}.",
        "SOCIALPUB_MONGO__URL": mongo_settings.url.get_secret_value(),
        "APPROVAL_MONGO__DATABASE": f"test_approval_fuzz_{unique}",
        "SOCIALPUB_CREDENTIALS__DATABASE": f"test_credentials_fuzz_{unique}",
        "SOCIALPUB_CREDENTIALS__KEYS": f'["{FERNET_KEY}"]',
        "APPROVAL_BOOTSTRAP_TOKEN": BOOTSTRAP,
    }
    process = ServiceProcess("approval", env, tmp_path / "approval.log")
    try:
        asyncio.run(process.wait_ready())
        yield process
    finally:
        assert process.terminate() == 0
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_settings.url.get_secret_value())
        client.drop_database(f"test_approval_fuzz_{unique}")
        client.drop_database(f"test_credentials_fuzz_{unique}")
        client.close()
