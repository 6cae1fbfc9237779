"""Run the publisher: `python -m publisher --platform instagram` (or `--platform all` locally)."""

from __future__ import annotations

import argparse

from publisher.app import create_app
from publisher.settings import PublisherSettings
from shared.http import serve
from shared.logging import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m publisher", description=__doc__)
    parser.add_argument(
        "--platform", help="instagram, x, ... a comma list, or all (default: PUBLISHER_PLATFORM, else all)"
    )
    args = parser.parse_args(argv)
    settings = PublisherSettings(**({"platform": args.platform} if args.platform else {}))
    settings.platform_list()  # fail fast on an unknown platform name
    configure_logging(service=settings.SERVICE, level=settings.log.level, json_output=settings.log.json_output)
    serve(create_app(settings), settings.http)


if __name__ == "__main__":
    main()
