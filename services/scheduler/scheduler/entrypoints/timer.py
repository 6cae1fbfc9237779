"""The timer loop: sleep until the earliest due post (or until woken by a change), dispatch."""

from __future__ import annotations

import asyncio

from scheduler.handlers import Scheduler
from shared.logging import get_logger
from shared.timers import run_timer

log = get_logger(__name__)


async def run_dispatch(scheduler: Scheduler) -> None:
    await run_timer(
        seconds_until_next_due=scheduler.seconds_until_next_due,
        wakeup=scheduler.wakeup,
        step=scheduler.dispatch_due,
        what="dispatching due posts",
    )


async def run_compaction(scheduler: Scheduler, interval_seconds: float) -> None:
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await scheduler.compact()
        except Exception:
            log.exception("compacting dispatch records failed; will try again")
