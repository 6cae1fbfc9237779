"""The pull loops: sleep until the earliest planned pull or snapshot (or until woken by a change), run it."""

from __future__ import annotations

from metrics.account_handlers import AccountSnapshots
from metrics.handlers import MetricsService
from shared.timers import run_timer


async def run_pulls(service: MetricsService) -> None:
    await run_timer(
        seconds_until_next_due=service.seconds_until_next_due,
        wakeup=service.wakeup,
        step=service.run_due,
        what="running due pulls",
    )


async def run_account_snapshots(accounts: AccountSnapshots) -> None:
    await run_timer(
        seconds_until_next_due=accounts.seconds_until_next_due,
        wakeup=accounts.wakeup,
        step=accounts.run_due,
        what="taking due account snapshots",
    )
