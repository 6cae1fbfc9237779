"""Kafka subscribers of the approval service: decode, call a handler, publish what it returns."""

from __future__ import annotations

from shared.service import Infrastructure


def register(infra: Infrastructure) -> None:
    """Subscribe the service's handlers to their topics. The skeleton has none yet."""
