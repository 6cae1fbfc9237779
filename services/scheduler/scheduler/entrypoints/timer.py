"""The timer loop: sleep until the earliest due post (or until woken by a change), dispatch."""

from __future__ import annotations

import asyncio
import contextlib

from scheduler.handlers import Scheduler
from shared.logging import get_logger

log = get_logger(__name__)

_RETRY_AFTER_ERROR_SECONDS = 1.0
# Upper bound on a sleep, so a clock jump or a missed wake-up costs at most this much.
_MAX_SLEEP_SECONDS = 5.0


async def run_timer(scheduler: Scheduler) -> None:
    while True:
        delay = scheduler.seconds_until_next_due()
        timeout = _MAX_SLEEP_SECONDS if delay is None else min(delay, _MAX_SLEEP_SECONDS)
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(scheduler.wakeup.wait(), timeout)
        scheduler.wakeup.clear()
        try:
            await scheduler.dispatch_due()
        except Exception:
            log.exception("dispatch failed; the posts stay on the timer and are tried again")
            await asyncio.sleep(_RETRY_AFTER_ERROR_SECONDS)


async def run_compaction(scheduler: Scheduler, interval_seconds: float) -> None:
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await scheduler.compact()
        except Exception:
            log.exception("compacting dispatch records failed; will try again")
