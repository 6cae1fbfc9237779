"""Composition root of the publisher service: builds settings-driven infrastructure and wires it."""

from __future__ import annotations

from fastapi import FastAPI

from publisher.entrypoints import consumers
from publisher.settings import PublisherSettings
from shared.service import build_app, build_infrastructure


def create_app(settings: PublisherSettings) -> FastAPI:
    infra = build_infrastructure(settings)
    consumers.register(infra)
    return build_app(infra, title="socialpub publisher")
