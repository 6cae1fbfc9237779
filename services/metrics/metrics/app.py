"""Composition root of the metrics service."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI

from metrics.account_handlers import AccountSnapshots
from metrics.adapters.approval import ApprovalKeys
from metrics.adapters.backlog import KafkaBacklog
from metrics.adapters.mongo import INDEXES, MongoAccountStore, MongoMetricsStore
from metrics.adapters.runtime import BusSink, SystemClock
from metrics.domain import PullPolicy, YieldPolicy
from metrics.entrypoints import consumers
from metrics.entrypoints.http import build_router, install_error_handlers
from metrics.entrypoints.timer import run_account_snapshots, run_pulls
from metrics.handlers import MetricsConfig, MetricsService, PlatformCalls
from metrics.instruments import build_pull_metrics
from metrics.platforms import SOURCES
from metrics.platforms.base import InsightSource, OAuthClient
from metrics.platforms.linkedin import LinkedInInsights
from metrics.ports import Clock
from metrics.settings import MetricsSettings, PullSettings
from shared.credentials import CredentialStore, build_cipher
from shared.events import Platform
from shared.httpclient import build_http_client
from shared.mongo import build_client
from shared.service import build_app, build_infrastructure
from shared.tasks import stop_tasks


def pull_policy(settings: PullSettings) -> PullPolicy:
    return PullPolicy(
        first_after=timedelta(seconds=settings.first_after_seconds),
        day_after=timedelta(hours=settings.day_after_hours),
        nightly_hour_utc=settings.nightly_hour_utc,
        nightly_spread=timedelta(minutes=settings.nightly_spread_minutes),
        nightly_min_gap=timedelta(hours=settings.nightly_min_gap_hours),
        young_for=timedelta(days=settings.young_days),
        catch_up_after=timedelta(minutes=settings.catch_up_after_minutes),
        retry_base=timedelta(seconds=settings.retry_base_seconds),
        retry_max=timedelta(seconds=settings.retry_max_seconds),
        max_tries=settings.max_tries,
        rate_limit_backoff=timedelta(seconds=settings.rate_limit_backoff_seconds),
        account_hour_utc=settings.account_hour_utc,
        account_spread=timedelta(minutes=settings.account_spread_minutes),
    )


def build_sources(
    settings: MetricsSettings, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[dict[Platform, InsightSource], list[httpx.AsyncClient]]:
    """One insight module per configured platform, each with its own client on its base URL."""
    sources: dict[Platform, InsightSource] = {}
    clients: list[httpx.AsyncClient] = []
    for platform, kind in SOURCES.items():
        endpoint = settings.platforms.get(platform.value)
        if endpoint is None:
            continue
        # aiohttp's pool underneath (httpcore's cost several ms of CPU per pull under load) and no
        # cookies, as in the publisher: one client serves every account.
        client = build_http_client(
            max_connections=settings.max_concurrent_pulls,
            timeout_seconds=settings.request_timeout_seconds,
            base_url=endpoint.base_url,
            transport=transport,
        )
        clients.append(client)
        oauth = OAuthClient(endpoint.client_id, endpoint.client_secret, endpoint.token_url)
        source = kind(client, oauth)
        if isinstance(source, LinkedInInsights):
            source.version = settings.linkedin_version
        sources[platform] = source  # type: ignore[assignment]
    return sources, clients


def create_app(
    settings: MetricsSettings,
    *,
    clock: Clock | None = None,
    platform_transport: httpx.AsyncBaseTransport | None = None,
    approval_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The service. Tests inject a clock and transports; production passes only settings."""
    clock = clock or SystemClock()
    infra = build_infrastructure(settings)
    infra.indexes.extend(INDEXES)
    credentials_client = build_client(settings.mongo)
    credentials = CredentialStore.in_database(
        credentials_client[settings.credentials.database], build_cipher(settings.credentials)
    )
    sources, clients = build_sources(settings, platform_transport)
    approval_http = httpx.AsyncClient(base_url=settings.approval_url, timeout=5.0, transport=approval_transport)
    config = MetricsConfig(
        policy=pull_policy(settings.pulls),
        refresh_min_interval=timedelta(seconds=settings.refresh_min_interval_seconds),
        stale_after=timedelta(hours=settings.stale_after_hours),
        max_concurrent_pulls=settings.max_concurrent_pulls,
        yield_policy=YieldPolicy(
            backlog=settings.pulls.yield_backlog, at_most=timedelta(seconds=settings.pulls.yield_at_most_seconds)
        ),
    )
    backlog = KafkaBacklog(settings.kafka) if settings.pulls.yield_backlog > 0 else None
    calls = PlatformCalls(credentials, config.policy)
    instruments = build_pull_metrics(infra.metrics.registry)
    service = MetricsService(
        store=MongoMetricsStore(infra.db),
        calls=calls,
        sources=sources,
        sink=BusSink(infra.bus),
        clock=clock,
        config=config,
        instruments=instruments,
        backlog=backlog,
    )
    accounts = AccountSnapshots(
        store=MongoAccountStore(infra.db),
        calls=calls,
        sources=sources,
        clock=clock,
        config=config,
        instruments=instruments,
    )
    consumers.register(
        infra.bus, service, accounts, batch_size=settings.batch_size, session_timeout_ms=settings.session_timeout_ms
    )
    keys = ApprovalKeys(approval_http, cache_seconds=settings.auth_cache_seconds)
    router = build_router(
        service, accounts, keys, clock, refresh_role=settings.refresh_role, unreported_role=settings.unreported_role
    )

    tasks: list[asyncio.Task[None]] = []

    async def start_loop() -> None:
        tasks.append(asyncio.create_task(run_pulls(service), name="pulls"))
        tasks.append(asyncio.create_task(run_account_snapshots(accounts), name="account-snapshots"))

    async def stop_loop() -> None:
        await stop_tasks(tasks)
        if backlog is not None:
            await backlog.close()
        for client in [*clients, approval_http]:
            await client.aclose()
        await credentials_client.close()

    infra.on_started.append(start_loop)
    infra.on_stopping.append(stop_loop)
    app = build_app(infra, title="socialpub metrics", routers=[router])
    install_error_handlers(app, clock)
    app.state.metrics_service = service
    app.state.account_snapshots = accounts
    return app
