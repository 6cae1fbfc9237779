"""The key check against the approval service: verdicts, the reported role, brief caching."""

from __future__ import annotations

import httpx
import pytest

from metrics.adapters.approval import ApprovalKeys, KeyCheckUnavailable, KeyRefused
from metrics.entrypoints.http import role_allows


def approval(calls: list[str], *, role: str | None = None, status: int = 200) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("authorization", ""))
        if request.headers.get("authorization") != "Bearer sp_k1_good":
            return httpx.Response(401, json={"error": {"code": "unauthenticated", "message": "unknown or revoked"}})
        if status != 200:
            return httpx.Response(status)
        body = {"workspace_id": "ws-1", "name": "Agency"} | ({"role": role} if role else {})
        return httpx.Response(200, json=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://approval")


async def test_a_known_key_gives_its_workspace_and_is_cached() -> None:
    calls: list[str] = []
    async with approval(calls, role="viewer") as http:
        keys = ApprovalKeys(http, cache_seconds=30)
        first = await keys.verify("Bearer sp_k1_good")
        again = await keys.verify("Bearer sp_k1_good")
    assert (first.workspace_id, first.role) == ("ws-1", "viewer")
    assert again == first
    assert calls == ["Bearer sp_k1_good"]


async def test_an_unknown_key_is_refused_and_a_missing_one_never_asked() -> None:
    calls: list[str] = []
    async with approval(calls) as http:
        keys = ApprovalKeys(http, cache_seconds=30)
        with pytest.raises(KeyRefused, match="unknown or revoked"):
            await keys.verify("Bearer sp_k1_bad")
        with pytest.raises(KeyRefused, match="missing"):
            await keys.verify(None)
    assert calls == ["Bearer sp_k1_bad"]


async def test_role_is_none_when_not_reported_and_outages_decide_nothing() -> None:
    async with approval([]) as http:
        assert (await ApprovalKeys(http, cache_seconds=0).verify("Bearer sp_k1_good")).role is None
    async with approval([], status=500) as http:
        with pytest.raises(KeyCheckUnavailable):
            await ApprovalKeys(http, cache_seconds=30).verify("Bearer sp_k1_good")


def test_roles_are_cumulative() -> None:
    assert role_allows("admin", "editor")
    assert role_allows("editor", "editor")
    assert not role_allows("viewer", "editor")
    assert not role_allows("owner?", "viewer")
