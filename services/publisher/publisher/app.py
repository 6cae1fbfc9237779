"""Composition root of the publisher service: one process publishes to one platform (production)
or to several (`--platform all`, for local runs); everything is wired here and nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from fastapi import FastAPI

from publisher.adapters.mongo import INDEXES, MongoLedger, MongoRateStore
from publisher.adapters.runtime import BusSink, MediaDownloader, SystemClock
from publisher.domain import RetryPolicy
from publisher.entrypoints.consumers import ConsumerOptions, DueConsumer, register_account_commands
from publisher.handlers import Credentials, Publisher, PublisherConfig, RateLimits
from publisher.instruments import build_publisher_metrics
from publisher.platforms import app_limit_of, build_client, limit_of, refresh_margin_of
from publisher.platforms.base import PlatformClient, Polling
from publisher.settings import PublisherSettings
from shared.credentials import CredentialStore, build_cipher
from shared.events import Platform
from shared.httpclient import build_http_client
from shared.logging import get_logger
from shared.service import build_app, build_infrastructure
from shared.tasks import stop_tasks

log = get_logger(__name__)


def create_app(settings: PublisherSettings) -> FastAPI:
    infra = build_infrastructure(settings)
    infra.indexes.extend(INDEXES)
    platforms = settings.platform_list()
    http = build_http_client(max_connections=settings.max_connections, timeout_seconds=settings.request_timeout_seconds)
    polling = Polling(every=settings.processing_poll_seconds, timeout=settings.processing_timeout_seconds)
    downloads = MediaDownloader(http)
    clients: dict[Platform, PlatformClient] = {}
    for platform in platforms:
        base = f"{settings.emulator_url.rstrip('/')}/{platform.value}" if settings.emulator_url else None
        clients[platform] = build_client(
            platform, http, settings.platforms.of(platform), base_url=base, fetch_media=downloads, polling=polling
        )
    clock = SystemClock()
    metrics = build_publisher_metrics(infra.metrics.registry)
    ledger = MongoLedger(infra.db)
    rates = MongoRateStore(infra.db)
    vault = CredentialStore.in_database(infra.mongo[settings.credentials.database], build_cipher(settings.credentials))
    publisher = Publisher(
        clients=clients,
        ledger=ledger,
        credentials=Credentials(
            vault,
            clock,
            clients,
            refresh_margins={p: refresh_margin_of(p, settings.platforms.of(p)) for p in platforms},
            cache_seconds=settings.credentials_cache_seconds,
        ),
        limits=RateLimits(
            rates,
            clock,
            limits={p: limit_of(p, settings.platforms.of(p)) for p in platforms},
            app_limits={p: app_limit_of(p, settings.platforms.of(p)) for p in platforms},
            live_every=timedelta(seconds=settings.live_quota_every_seconds),
        ),
        sink=BusSink(infra.bus),
        clock=clock,
        metrics=metrics,
        config=PublisherConfig(
            owner=settings.replica_id,
            lease=timedelta(seconds=settings.lease_seconds),
            attempt_timeout=timedelta(seconds=settings.attempt_timeout_seconds),
            policy=RetryPolicy(
                max_attempts=settings.max_attempts,
                base=timedelta(seconds=settings.retry_base_seconds),
                cap=timedelta(seconds=settings.retry_cap_seconds),
                jitter=settings.retry_jitter,
            ),
        ),
    )
    slots = asyncio.Semaphore(settings.max_in_flight)
    options = ConsumerOptions(
        max_in_flight=settings.max_in_flight,
        max_pending=settings.max_pending,
        fetch_max_records=settings.fetch_max_records,
        commit_interval=settings.commit_interval_seconds,
        session_timeout_ms=settings.session_timeout_ms,
    )
    consumers = [
        DueConsumer(
            platform=platform,
            publisher=publisher,
            bus=infra.bus,
            kafka=settings.kafka,
            rates=rates,
            metrics=metrics,
            slots=slots,
            options=options,
        )
        for platform in platforms
    ]
    for platform in platforms:
        register_account_commands(infra.bus, publisher, platform)

    flusher: list[asyncio.Task[None]] = []

    async def flush_rates() -> None:
        while True:
            await asyncio.sleep(settings.rate_flush_seconds)
            try:
                await rates.flush()
            except Exception:  # kept dirty, written next time
                log.exception("rate windows not written; retrying")

    async def start() -> None:
        for consumer in consumers:
            await consumer.start()
        flusher.append(asyncio.create_task(flush_rates(), name="rate-flush"))
        log.info("publisher consuming", platforms=[p.value for p in platforms], replica=settings.replica_id)

    async def stop() -> None:
        for consumer in consumers:
            await consumer.stop()
        await stop_tasks(flusher)
        with contextlib.suppress(Exception):
            await rates.flush()
        await ledger.close()
        await http.aclose()

    infra.on_started.append(start)
    infra.on_stopping.append(stop)
    return build_app(infra, title="socialpub publisher")
