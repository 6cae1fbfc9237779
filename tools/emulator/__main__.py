"""`python -m tools.emulator --host 127.0.0.1 --port 8090 [--latency-ms 50]`: serve the emulator."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from tools.emulator.app import create_app
from tools.emulator.config import EmulatorConfig
from tools.emulator.errors import ConnectionDropped


class _HideDeliberateDrops(logging.Filter):
    """A lost response closes the connection on purpose; that is not an application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every platform call")
    parser.add_argument("--processing-ms", type=float, default=1000.0, help="container / upload processing time")
    parser.add_argument("--no-realistic-limits", action="store_true", help="start without publishing quotas")
    parser.add_argument("--seed", type=int, default=None, help="seed for rate-based fault injection")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = EmulatorConfig(
        latency_ms=args.latency_ms,
        processing_delay_ms=args.processing_ms,
        realistic_limits=not args.no_realistic_limits,
        seed=args.seed,
    )
    logging.getLogger("uvicorn.error").addFilter(_HideDeliberateDrops())
    print(f"social-platform emulator on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=args.log_level,
        timeout_keep_alive=30,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
