"""What every service is built from: settings, metrics, Kafka, MongoDB, and an HTTP app whose
lifespan starts and stops them in order. Each service's app.py composes one of these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.http import add_ops_routes
from shared.kafka import EventBus, build_broker, ensure_topics
from shared.logging import get_logger
from shared.metrics import ServiceMetrics, build_metrics
from shared.mongo import Document, IndexSpec, build_client, ensure_indexes, ping
from shared.settings import ServiceSettings
from shared.tasks import install_task_dump
from shared.topics import all_topics

log = get_logger(__name__)

Hook = Callable[[], Awaitable[None]]


@dataclass
class Infrastructure:
    settings: ServiceSettings
    metrics: ServiceMetrics
    broker: KafkaBroker
    mongo: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    bus: EventBus
    indexes: list[IndexSpec] = field(default_factory=list)
    on_started: list[Hook] = field(default_factory=list)
    on_stopping: list[Hook] = field(default_factory=list)


def build_infrastructure(settings: ServiceSettings) -> Infrastructure:
    metrics = build_metrics()
    broker = build_broker(settings.kafka, service=settings.SERVICE, metrics=metrics)
    mongo = build_client(settings.mongo)
    return Infrastructure(
        settings=settings,
        metrics=metrics,
        broker=broker,
        mongo=mongo,
        db=mongo[settings.database],
        bus=EventBus(broker, settings.kafka, metrics, client_id=settings.SERVICE),
    )


def build_app(infra: Infrastructure, *, title: str, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The service's HTTP app. Start-up: indexes, topics, broker, then the service's own hooks;
    shutdown runs in reverse so nothing is consumed once the stores are closing."""
    settings = infra.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        install_task_dump()
        await ensure_indexes(infra.db, infra.indexes)
        if settings.kafka.create_topics:
            await ensure_topics(settings.kafka, all_topics())
        await infra.bus.start()
        await infra.broker.start()
        for hook in infra.on_started:
            await hook()
        log.info("service started", http_port=settings.http.port, database=settings.database)
        try:
            yield
        finally:
            log.info("service stopping")
            for hook in reversed(infra.on_stopping):
                await hook()
            await infra.broker.stop()
            await infra.bus.stop()
            await infra.mongo.close()
            log.info("service stopped")

    app = FastAPI(title=title, lifespan=lifespan)

    async def kafka_ready() -> bool:
        return bool(await infra.broker.ping(timeout=2.0))

    async def mongo_ready() -> bool:
        return await ping(infra.mongo)

    add_ops_routes(app, metrics=infra.metrics, checks={"kafka": kafka_ready, "mongodb": mongo_ready})
    for router in routers:
        app.include_router(router)
    return app
