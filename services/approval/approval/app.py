"""Composition root of the approval service: builds settings-driven infrastructure and wires it."""

from __future__ import annotations

from fastapi import FastAPI

from approval.entrypoints import consumers
from approval.settings import ApprovalSettings
from shared.service import build_app, build_infrastructure


def create_app(settings: ApprovalSettings) -> FastAPI:
    infra = build_infrastructure(settings)
    consumers.register(infra)
    return build_app(infra, title="socialpub approval")
