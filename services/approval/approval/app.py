"""Composition root of the approval service: builds settings-driven infrastructure and wires it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI
from prometheus_client import Gauge

from approval import handlers
from approval.adapters.clock import SystemClock
from approval.adapters.media_probe import HttpMediaProbe
from approval.adapters.mongo import (
    INDEXES,
    MongoAccounts,
    MongoApiKeys,
    MongoAssets,
    MongoAttempts,
    MongoPolicies,
    MongoPosts,
    MongoSlots,
    MongoWorkspaces,
)
from approval.entrypoints import consumers, http
from approval.entrypoints.outbox import Emitter, every
from approval.handlers import Ports
from approval.settings import ApprovalSettings
from shared.credentials import CredentialStore, build_cipher
from shared.service import build_app, build_infrastructure
from shared.tasks import stop_tasks


def create_app(settings: ApprovalSettings) -> FastAPI:
    infra = build_infrastructure(settings)
    infra.indexes.extend(INDEXES)
    db = infra.db
    media_client = httpx.AsyncClient(timeout=settings.media_probe.timeout_seconds)
    ports = Ports(
        workspaces=MongoWorkspaces(db),
        keys=MongoApiKeys(db),
        accounts=MongoAccounts(db),
        assets=MongoAssets(db),
        posts=MongoPosts(db),
        attempts=MongoAttempts(db),
        vault=CredentialStore.in_database(
            infra.mongo[settings.credentials.database], build_cipher(settings.credentials)
        ),
        clock=SystemClock(),
        policies=MongoPolicies(db),
        slots=MongoSlots(db),
        media=HttpMediaProbe(media_client, settings.media_probe) if settings.media_probe.enabled else None,
    )
    emit = Emitter(infra.bus, ports.assets, ports.clock)
    consumers.register(infra, ports)

    background: list[asyncio.Task[None]] = []
    expiring = Gauge(
        "socialpub_accounts_tokens_expiring",
        "Active accounts whose token expires within the horizon and holds no refresh token",
        ["platform"],
        registry=infra.metrics.registry,
    )

    async def count_expiring() -> None:
        counts = await handlers.count_expiring_tokens(ports, timedelta(days=settings.token_expiry_horizon_days))
        expiring.clear()  # a platform whose last expiring account was reconnected drops to nothing
        for platform, count in counts.items():
            expiring.labels(platform).set(count)

    async def start_jobs() -> None:
        await emit.relay_once()
        await count_expiring()
        background.append(
            asyncio.create_task(every(settings.token_expiry_check_seconds, "expiring tokens", count_expiring))
        )
        background.append(asyncio.create_task(every(settings.outbox_relay_interval_seconds, "outbox", emit.relay_once)))
        background.append(
            asyncio.create_task(every(settings.purge_interval_seconds, "purge", lambda: handlers.purge_deleted(ports)))
        )

    async def stop_jobs() -> None:
        await stop_tasks(background)
        await media_client.aclose()

    infra.on_started.append(start_jobs)
    infra.on_stopping.append(stop_jobs)

    app = build_app(
        infra,
        title="socialpub approval",
        routers=[http.build_router(ports, emit, settings)],
    )
    http.install_error_handlers(app)
    return app
