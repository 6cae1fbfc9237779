"""Composition root of the scheduler service."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from scheduler.adapters.mongo import INDEXES, MongoAccountStatuses, MongoPostStore
from scheduler.adapters.runtime import BusSink, SystemClock
from scheduler.entrypoints import consumers
from scheduler.entrypoints.timer import run_compaction, run_dispatch
from scheduler.handlers import Scheduler, SchedulerConfig
from scheduler.instruments import build_scheduler_metrics
from scheduler.settings import SchedulerSettings
from shared.service import build_app, build_infrastructure
from shared.tasks import stop_tasks


def create_app(settings: SchedulerSettings) -> FastAPI:
    infra = build_infrastructure(settings)
    infra.indexes.extend(INDEXES)
    sink = BusSink(infra.bus)
    scheduler = Scheduler(
        store=MongoPostStore(infra.db),
        accounts=MongoAccountStatuses(infra.db),
        sink=sink,
        clock=SystemClock(),
        config=SchedulerConfig(
            misfire_window=timedelta(hours=settings.misfire_window_hours),
            dispatch_chunk=settings.dispatch_chunk,
            compact_after=timedelta(seconds=settings.compact_after_seconds),
            record_within=timedelta(milliseconds=settings.record_within_ms),
        ),
        metrics=build_scheduler_metrics(infra.metrics.registry),
    )
    consumers.register(
        infra.bus,
        scheduler,
        sink,
        replica_id=settings.replica_id,
        batch_size=settings.batch_size,
        session_timeout_ms=settings.session_timeout_ms,
    )

    tasks: list[asyncio.Task[None]] = []

    async def start_loops() -> None:
        tasks.append(asyncio.create_task(run_dispatch(scheduler), name="timer"))
        tasks.append(asyncio.create_task(run_compaction(scheduler, settings.compact_interval_seconds), name="compact"))

    async def stop_loops() -> None:
        await stop_tasks(tasks)
        await scheduler.record_before_leaving()

    infra.on_started.append(start_loops)
    infra.on_stopping.append(stop_loops)
    return build_app(infra, title="socialpub scheduler")
