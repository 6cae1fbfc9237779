"""In-memory due-time scheduling used by every service that owns work by Kafka partition: a heap
of due times, and the loop that sleeps until the earliest one (or until woken by a change)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Awaitable, Callable, Container

from shared.logging import get_logger

log = get_logger(__name__)

# Upper bound on a sleep, so a clock jump or a missed wake-up costs at most this much.
_MAX_SLEEP_SECONDS = 5.0
_RETRY_AFTER_ERROR_SECONDS = 1.0


class DueHeap:
    """Due timestamps of keyed items. When an item changes, its old entry goes stale and is
    skipped on the way out (`is_current` decides), which is cheaper than removing it."""

    def __init__(self, is_current: Callable[[float, str], bool]) -> None:
        self._entries: list[tuple[float, str]] = []
        self._is_current = is_current

    def push(self, due: float, key: str) -> None:
        heapq.heappush(self._entries, (due, key))

    def retain(self, keys: Container[str]) -> None:
        """Drop the entries of every key not in `keys` (after partitions were revoked)."""
        self._entries = [(due, key) for due, key in self._entries if key in keys]
        heapq.heapify(self._entries)

    def next_due(self) -> float | None:
        while self._entries:
            due, key = self._entries[0]
            if self._is_current(due, key):
                return due
            heapq.heappop(self._entries)
        return None

    def pop_due(self, cutoff: float, limit: int) -> list[str]:
        """Up to `limit` current keys due at or before `cutoff`, earliest first."""
        keys: list[str] = []
        while self._entries and self._entries[0][0] <= cutoff and len(keys) < limit:
            due, key = heapq.heappop(self._entries)
            if self._is_current(due, key):
                keys.append(key)
        return keys


async def run_timer(
    *,
    seconds_until_next_due: Callable[[], float | None],
    wakeup: asyncio.Event,
    step: Callable[[], Awaitable[object]],
    what: str,
) -> None:
    """Forever: sleep until the next due item or a wake-up, then run `step`. A failing step is
    logged and tried again shortly; whatever it did not finish stays due."""
    while True:
        delay = seconds_until_next_due()
        timeout = _MAX_SLEEP_SECONDS if delay is None else min(delay, _MAX_SLEEP_SECONDS)
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout)
        wakeup.clear()
        try:
            await step()
        except Exception:
            log.exception(f"{what} failed; it stays due and is tried again")
            await asyncio.sleep(_RETRY_AFTER_ERROR_SECONDS)
