"""Composition root of the approval service: builds settings-driven infrastructure and wires it."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from fastapi import FastAPI

from approval import handlers
from approval.adapters.clock import SystemClock
from approval.adapters.media_probe import HttpMediaProbe
from approval.adapters.mongo import (
    INDEXES,
    MongoAccounts,
    MongoApiKeys,
    MongoAssets,
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

    async def start_jobs() -> None:
        await emit.relay_once()
        background.append(asyncio.create_task(every(settings.outbox_relay_interval_seconds, "outbox", emit.relay_once)))
        background.append(
            asyncio.create_task(every(settings.purge_interval_seconds, "purge", lambda: handlers.purge_deleted(ports)))
        )

    async def stop_jobs() -> None:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
