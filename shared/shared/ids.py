"""Identifiers that are part of the event contract."""

from __future__ import annotations

from uuid import UUID, uuid5

# Fixed forever: changing it would give every existing post a new id.
_POST_NAMESPACE = UUID("5b0f4a4e-6c1e-4a8e-9a53-0c3c2a0f7d11")


def post_id_for(asset_id: str, target_id: str) -> str:
    """The post of one asset on one target. Deterministic, so a redelivered AssetApproved can
    never create a second post."""
    return str(uuid5(_POST_NAMESPACE, f"{asset_id}\x1f{target_id}"))
