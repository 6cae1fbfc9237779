"""Run the approval service: `python -m approval` or `socialpub-approval`."""

from __future__ import annotations

from approval.app import create_app
from approval.settings import ApprovalSettings
from shared.http import serve
from shared.logging import configure_logging


def main() -> None:
    settings = ApprovalSettings()
    configure_logging(service=settings.SERVICE, level=settings.log.level, json_output=settings.log.json_output)
    serve(create_app(settings), settings.http)


if __name__ == "__main__":
    main()
