"""The pull loop: sleep until the earliest planned pull (or until woken by a change), run it."""

from __future__ import annotations

from metrics.handlers import MetricsService
from shared.timers import run_timer


async def run_pulls(service: MetricsService) -> None:
    await run_timer(
        seconds_until_next_due=service.seconds_until_next_due,
        wakeup=service.wakeup,
        step=service.run_due,
        what="running due pulls",
    )
