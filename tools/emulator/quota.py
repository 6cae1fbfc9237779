"""Per-account usage: a rolling publishing window and a fixed request window."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from tools.emulator.config import Limits


@dataclass
class Usage:
    publishes: deque[float] = field(default_factory=deque)
    window_start: float = 0.0
    window_count: int = 0

    def published_in_window(self, limits: Limits, now: float) -> int:
        horizon = now - limits.publish_window_s
        while self.publishes and self.publishes[0] <= horizon:
            self.publishes.popleft()
        return len(self.publishes)

    def publish_reset_at(self, limits: Limits, now: float) -> float:
        """When the oldest publish leaves the rolling window (so one more post fits)."""
        self.published_in_window(limits, now)
        return self.publishes[0] + limits.publish_window_s if self.publishes else now

    def publish_remaining(self, limits: Limits, now: float) -> int | None:
        if limits.publish_limit is None:
            return None
        return max(0, limits.publish_limit - self.published_in_window(limits, now))

    def record_publish(self, now: float) -> None:
        self.publishes.append(now)

    def take_request(self, limits: Limits, now: float) -> bool:
        """Count one call in the current fixed window; False when the window's limit is already used up."""
        start = math.floor(now / limits.request_window_s) * limits.request_window_s
        if start != self.window_start:
            self.window_start = start
            self.window_count = 0
        if limits.request_limit is not None and self.window_count >= limits.request_limit:
            return False
        self.window_count += 1
        return True

    def request_window(self, limits: Limits, now: float) -> tuple[int, float]:
        """(calls used in the current window, window reset epoch)."""
        start = math.floor(now / limits.request_window_s) * limits.request_window_s
        used = self.window_count if start == self.window_start else 0
        return used, start + limits.request_window_s
