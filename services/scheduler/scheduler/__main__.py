"""Run the scheduler service: `python -m scheduler` or `socialpub-scheduler`."""

from __future__ import annotations

from scheduler.app import create_app
from scheduler.settings import SchedulerSettings
from shared.http import serve
from shared.logging import configure_logging


def main() -> None:
    settings = SchedulerSettings()
    configure_logging(service=settings.SERVICE, level=settings.log.level, json_output=settings.log.json_output)
    serve(create_app(settings), settings.http)


if __name__ == "__main__":
    main()
