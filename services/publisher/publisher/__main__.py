"""Run the publisher service: `python -m publisher` or `socialpub-publisher`."""

from __future__ import annotations

from publisher.app import create_app
from publisher.settings import PublisherSettings
from shared.http import serve
from shared.logging import configure_logging


def main() -> None:
    settings = PublisherSettings()
    configure_logging(service=settings.SERVICE, level=settings.log.level, json_output=settings.log.json_output)
    serve(create_app(settings), settings.http)


if __name__ == "__main__":
    main()
