"""Run the scheduler service: `python -m scheduler` or `socialpub-scheduler`."""

from __future__ import annotations

import gc

from scheduler.app import create_app
from scheduler.settings import SchedulerSettings
from shared.http import serve
from shared.logging import configure_logging


def main() -> None:
    # A replica holds every post it owns in memory; with the default thresholds the collector's
    # full passes over those objects stalled the timer by hundreds of milliseconds.
    gc.set_threshold(100_000, 50, 100)
    settings = SchedulerSettings()
    configure_logging(service=settings.SERVICE, level=settings.log.level, json_output=settings.log.json_output)
    serve(create_app(settings), settings.http)


if __name__ == "__main__":
    main()
