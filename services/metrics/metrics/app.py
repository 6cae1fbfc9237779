"""Composition root of the metrics service: builds settings-driven infrastructure and wires it."""

from __future__ import annotations

from fastapi import FastAPI

from metrics.entrypoints import consumers
from metrics.settings import MetricsSettings
from shared.service import build_app, build_infrastructure


def create_app(settings: MetricsSettings) -> FastAPI:
    infra = build_infrastructure(settings)
    consumers.register(infra)
    return build_app(infra, title="socialpub metrics")
