"""The real clock."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        # MongoDB keeps milliseconds: a time read back must equal the one written (compare-and-set).
        now = datetime.now(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)
