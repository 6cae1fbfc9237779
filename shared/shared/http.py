"""The operational HTTP surface every service has: /healthz, /readyz, /metrics, and serving it."""

from __future__ import annotations

import signal
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


def serve(app: FastAPI, settings: HttpSettings) -> None:
    """Run until SIGTERM or SIGINT; uvicorn then drains requests and runs the lifespan shutdown."""
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
    uvicorn.Server(config).run()


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
