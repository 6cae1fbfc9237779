"""A thin async client for the approval and metrics HTTP APIs (docs/approval.md, docs/metrics.md),
shared by the demo (`make run`, `make demo`) and the end-to-end tests."""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

JSON = dict[str, Any]
# Posts that will not change again without a person (held waits for a reconnect).
TERMINAL_POST_STATUSES = frozenset({"published", "failed", "held", "cancelled", "unconfirmed", "missed"})


class ApiError(Exception):
    """A non-2xx answer: the HTTP status and the API's error code (the body may hold ids, never tokens)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class SocialpubApi:
    """One workspace's view of the system, through its API key (`key`; None until bootstrapped)."""

    def __init__(self, approval_url: str, metrics_url: str, key: str | None = None, *, timeout: float = 30.0) -> None:
        self.approval_url = approval_url.rstrip("/")
        self.metrics_url = metrics_url.rstrip("/")
        self.key = key
        self._http = httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> SocialpubApi:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str | int] | None = None,
    ) -> Any:
        if headers is None:
            headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        response = await self._http.request(method, url, json=json, headers=headers, params=params)
        if response.is_error:
            try:
                error = response.json()["error"]
                code, message = str(error["code"]), str(error["message"])
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", response.text[:200]
            raise ApiError(response.status_code, code, message)
        return response.json() if response.content else None

    async def _approval(self, method: str, path: str, json: Any = None) -> Any:
        return await self._call(method, f"{self.approval_url}/v1{path}", json=json)

    # ---- workspace

    async def bootstrap(self, name: str, bootstrap_token: str, *, timezone: str = "UTC") -> str:
        """A new workspace; its admin key becomes this client's key (and is returned)."""
        body = await self._call(
            "POST",
            f"{self.approval_url}/v1/workspaces",
            json={"name": name, "timezone": timezone},
            headers={"X-Bootstrap-Token": bootstrap_token},
        )
        self.key = str(body["api_key"])
        return self.key

    async def workspace(self) -> JSON:
        result: JSON = await self._approval("GET", "/workspace")
        return result

    async def enable_publishing(self) -> JSON:
        result: JSON = await self._approval("PATCH", "/workspace", {"publishing_enabled": True})
        return result

    # ---- accounts

    async def connect_account(
        self,
        platform: str,
        *,
        handle: str,
        tokens: JSON,
        remote_id: str | None = None,
        profile: JSON | None = None,
        timezone: str = "UTC",
    ) -> JSON:
        """`tokens`: access_token, refresh_token, expires_at, scopes (as `POST /v1/accounts` takes them)."""
        body = {
            "platform": platform,
            "handle": handle,
            "remote_id": remote_id,
            "profile": profile or {},
            "timezone": timezone,
            "tokens": tokens,
        }
        result: JSON = await self._approval("POST", "/accounts", body)
        return result

    async def reconnect(self, account_id: str, tokens: JSON) -> JSON:
        result: JSON = await self._approval("POST", f"/accounts/{account_id}/reconnect", {"tokens": tokens})
        return result

    async def account(self, account_id: str) -> JSON:
        result: JSON = await self._approval("GET", f"/accounts/{account_id}")
        return result

    # ---- assets and posts

    async def create_asset(self, body: JSON) -> JSON:
        result: JSON = await self._approval("POST", "/assets", body)
        return result

    async def approve(self, asset_id: str) -> JSON:
        result: JSON = await self._approval("POST", f"/assets/{asset_id}/approve", {})
        return result

    async def asset(self, asset_id: str) -> JSON:
        result: JSON = await self._approval("GET", f"/assets/{asset_id}")
        return result

    async def asset_posts(self, asset_id: str) -> JSON:
        """`{"asset_id", "state", "aggregate_status", "posts": [...]}`: the asset's row on the board."""
        result: JSON = await self._approval("GET", f"/assets/{asset_id}/posts")
        return result

    async def posts(self, **filters: str | int) -> JSON:
        """One page of `GET /v1/posts` (asset_id, account_id, platform, status, campaign, offset, limit)."""
        result: JSON = await self._call("GET", f"{self.approval_url}/v1/posts", params=filters)
        return result

    async def post(self, post_id: str) -> JSON:
        result: JSON = await self._approval("GET", f"/posts/{post_id}")
        return result

    async def cancel(self, post_id: str, reason: str = "cancelled through the API") -> JSON:
        result: JSON = await self._approval("POST", f"/posts/{post_id}/cancel", {"reason": reason})
        return result

    # ---- metrics

    async def post_metrics(self, post_id: str) -> JSON:
        result: JSON = await self._call("GET", f"{self.metrics_url}/v1/posts/{post_id}/metrics")
        return result


def tokens_of(access_token: str, refresh_token: str | None, expires_at: float | None, scopes: list[str]) -> JSON:
    """The `tokens` body of connect and reconnect from what a platform (the emulator) issued."""
    return {
        "access_token": access_token,
        "refresh_token": refresh_token,
        "expires_at": datetime.fromtimestamp(expires_at, UTC).isoformat() if expires_at else None,
        "scopes": scopes,
    }
