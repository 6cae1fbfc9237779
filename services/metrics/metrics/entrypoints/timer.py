"""The pull loop: sleep until the earliest planned pull (or until woken by a change), run it."""

from __future__ import annotations

import asyncio
import contextlib

from metrics.handlers import MetricsService
from shared.logging import get_logger

log = get_logger(__name__)

_RETRY_AFTER_ERROR_SECONDS = 1.0
# Upper bound on a sleep, so a clock jump or a missed wake-up costs at most this much.
_MAX_SLEEP_SECONDS = 5.0


async def run_pulls(service: MetricsService) -> None:
    while True:
        delay = service.seconds_until_next_due()
        timeout = _MAX_SLEEP_SECONDS if delay is None else min(delay, _MAX_SLEEP_SECONDS)
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(service.wakeup.wait(), timeout)
        service.wakeup.clear()
        try:
            await service.run_due()
        except Exception:
            log.exception("running due pulls failed; they stay planned and are tried again")
            await asyncio.sleep(_RETRY_AFTER_ERROR_SECONDS)
