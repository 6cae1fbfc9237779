"""Composition root of the scheduler service: builds settings-driven infrastructure and wires it."""

from __future__ import annotations

from fastapi import FastAPI

from scheduler.entrypoints import consumers
from scheduler.settings import SchedulerSettings
from shared.service import build_app, build_infrastructure


def create_app(settings: SchedulerSettings) -> FastAPI:
    infra = build_infrastructure(settings)
    consumers.register(infra)
    return build_app(infra, title="socialpub scheduler")
