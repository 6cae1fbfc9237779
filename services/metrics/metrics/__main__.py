"""Run the metrics service: `python -m metrics` or `socialpub-metrics`."""

from __future__ import annotations

from metrics.app import create_app
from metrics.settings import MetricsSettings
from shared.http import serve
from shared.logging import configure_logging


def main() -> None:
    settings = MetricsSettings()
    configure_logging(service=settings.SERVICE, level=settings.log.level, json_output=settings.log.json_output)
    serve(create_app(settings), settings.http)


if __name__ == "__main__":
    main()
