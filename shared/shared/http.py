"""The operational HTTP surface every service has: /healthz, /readyz, /metrics, and serving it."""

from __future__ import annotations

import gc
import signal
import socket
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from shared.metrics import ServiceMetrics
from shared.settings import HttpSettings

ReadinessCheck = Callable[[], Awaitable[bool]]


def add_ops_routes(app: FastAPI, *, metrics: ServiceMetrics, checks: dict[str, ReadinessCheck]) -> None:
    @app.get("/healthz", tags=["ops"], summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness: Kafka and MongoDB answer")
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in checks.items()}
        ready = all(results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": results},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(content=body, media_type=content_type)


# Python's defaults (700, 10, 10) ran a full collection over every live object every few seconds
# under load, and the event loop stood still meanwhile: 21 full passes of up to 224 ms in the
# publisher during a minute of the load benchmark, with every post in flight waiting. Now the
# older generations are collected far more rarely; the youngest stays small because a pass takes
# time in proportion to it (about a millisecond per thousand objects here: at 100,000 the
# publisher's passes took 60-220 ms). What start-up built (modules, models, clients) lives as
# long as the process, so it is frozen out of the passes once the service has started.
GC_THRESHOLDS = (10_000, 50, 100)


def serve(app: FastAPI, settings: HttpSettings) -> None:
    """Run until SIGTERM or SIGINT; uvicorn then drains requests and runs the lifespan shutdown."""
    gc.set_threshold(*GC_THRESHOLDS)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep our structlog configuration for uvicorn's loggers too
        lifespan="on",
        timeout_graceful_shutdown=25,
    )
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down gracefully; by then the shutdown was
    # orderly, so the handler it restores and re-triggers ends the process with status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    _Server(config).run()


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # the app's lifespan start-up is over
        gc.collect()
        gc.freeze()


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
