"""A typed async client for the emulator's control API, for tests and benchmarks.

async with EmulatorClient("http://127.0.0.1:8090") as emu:
    account = await emu.create_account("x")
    await emu.add_fault("lost_response", platform="x", count=1, hold_ms=5000)
    stats = await emu.stats(key_pattern=r"post_id=(\\S+)")
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from tools.emulator.faults import FaultSpec


class AccountInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    platform: str
    account_id: str
    username: str
    access_token: str
    access_expires_at: float | None
    refresh_token: str | None
    refresh_expires_at: float | None
    scopes: list[str]
    audited: bool
    rotates_refresh_token: bool
    revoked: bool


class PostInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    platform: str
    account_id: str
    remote_id: str
    text: str
    created_at: str
    created_ts: float
    media_type: str
    permalink: str | None
    status: str
    privacy: str | None
    extra: dict[str, Any]


class DuplicateGroup(BaseModel):
    platform: str
    account_id: str
    content_key: str
    count: int
    remote_ids: list[str]


class Stats(BaseModel):
    model_config = ConfigDict(extra="ignore")

    posts: int
    posts_by_platform: dict[str, int]
    posts_by_status: dict[str, int]
    duplicates: int
    duplicate_groups: int
    duplicate_examples: list[DuplicateGroup]
    accounts: int
    requests: int
    requests_by_platform: dict[str, int]


class FaultInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    kind: str
    remaining: int | None
    fired: int


class EmulatorClient:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8090",
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=f"{self.base_url}/_emulator", transport=transport, timeout=timeout)

    async def __aenter__(self) -> EmulatorClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def platform_url(self, platform: str) -> str:
        """The base URL a publisher uses for `platform` (the real API's base is replaced by this)."""
        return f"{self.base_url}/{platform}"

    async def _call(self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None) -> Any:
        response = await self._http.request(method, path, json=json, params=params)
        response.raise_for_status()
        return response.json()

    # accounts and tokens

    async def create_account(self, platform: str, **fields: Any) -> AccountInfo:
        """Fields as in `AccountSpec`: account_id, username, access_token, refresh_token, access_expires_in,
        refresh_expires_in, never_expires, scopes, audited, rotate_refresh_token, options."""
        return AccountInfo.model_validate(await self._call("POST", "/accounts", {"platform": platform, **fields}))

    async def create_accounts(self, specs: list[dict[str, Any]]) -> list[AccountInfo]:
        body = await self._call("POST", "/accounts/batch", {"accounts": specs})
        return [AccountInfo.model_validate(a) for a in body["accounts"]]

    async def accounts(self, platform: str | None = None) -> list[AccountInfo]:
        body = await self._call("GET", "/accounts", params={"platform": platform} if platform else None)
        return [AccountInfo.model_validate(a) for a in body["accounts"]]

    async def account(self, platform: str, account_id: str) -> AccountInfo:
        return AccountInfo.model_validate(await self._call("GET", f"/accounts/{platform}/{account_id}"))

    async def update_account(self, platform: str, account_id: str, **fields: Any) -> AccountInfo:
        """audited, scopes, options, rotate_refresh_token."""
        return AccountInfo.model_validate(await self._call("PATCH", f"/accounts/{platform}/{account_id}", fields))

    async def expire_token(
        self, platform: str, account_id: str, which: Literal["access", "refresh", "both"] = "access"
    ) -> AccountInfo:
        body = await self._call("POST", f"/accounts/{platform}/{account_id}/expire", {"token": which})
        return AccountInfo.model_validate(body)

    async def revoke(self, platform: str, account_id: str) -> AccountInfo:
        return AccountInfo.model_validate(await self._call("POST", f"/accounts/{platform}/{account_id}/revoke", {}))

    async def reconnect(self, platform: str, account_id: str, **fields: Any) -> AccountInfo:
        """Fresh tokens (as a user reconnecting would get); un-revokes the account."""
        body = await self._call("POST", f"/accounts/{platform}/{account_id}/tokens", fields)
        return AccountInfo.model_validate(body)

    async def usage(self, platform: str, account_id: str) -> dict[str, Any]:
        body: dict[str, Any] = await self._call("GET", f"/accounts/{platform}/{account_id}/usage")
        return body

    # behaviour

    async def set_latency(self, latency_ms: float, platform: str | None = None, account_id: str | None = None) -> None:
        """For every call, one platform's, or (with both) one account's calls."""
        await self._call("PUT", "/latency", {"latency_ms": latency_ms, "platform": platform, "account_id": account_id})

    async def set_limits(self, platform: str, account_id: str | None = None, **limits: float | None) -> dict[str, Any]:
        """publish_limit, publish_window_s, request_limit, request_window_s (None removes a limit)."""
        body: dict[str, Any] = await self._call(
            "PUT", "/limits", {"platform": platform, "account_id": account_id, **limits}
        )
        return body

    async def set_processing(
        self, delay_ms: float, platform: str | None = None, outcome: Literal["ok", "error", "expired"] = "ok"
    ) -> None:
        await self._call("PUT", "/processing", {"platform": platform, "delay_ms": delay_ms, "outcome": outcome})

    async def add_fault(self, kind: str, **fields: Any) -> FaultInfo:
        """Fields as in `FaultSpec`: platform, account_id, rate, count, applies_to, hold_ms, drop_connection,
        status, message."""
        spec = FaultSpec.model_validate({"kind": kind, **fields})
        return FaultInfo.model_validate(await self._call("POST", "/faults", spec.model_dump(mode="json")))

    async def faults(self) -> list[FaultInfo]:
        return [FaultInfo.model_validate(f) for f in (await self._call("GET", "/faults"))["faults"]]

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def remove_fault(self, fault_id: str) -> None:
        await self._call("DELETE", f"/faults/{fault_id}")

    async def set_insights(
        self, platform: str, remote_id: str, metrics: dict[str, int] | None = None, *, not_enough_viewers: bool = False
    ) -> None:
        body = {
            "platform": platform,
            "remote_id": remote_id,
            "metrics": metrics or {},
            "not_enough_viewers": not_enough_viewers,
        }
        await self._call("PUT", "/insights", body)

    async def set_account_stats(self, platform: str, account_id: str, metrics: dict[str, int]) -> None:
        await self._call("PUT", "/account-stats", {"platform": platform, "account_id": account_id, "metrics": metrics})

    async def set_linkedin_versions(self, retired: list[str], active_from: str | None = None) -> None:
        await self._call("PUT", "/linkedin/versions", {"retired": retired, "active_from": active_from})

    # inspection

    async def posts(self, platform: str | None = None, account_id: str | None = None) -> list[PostInfo]:
        params = {k: v for k, v in {"platform": platform, "account_id": account_id}.items() if v is not None}
        body = await self._call("GET", "/posts", params=params)
        return [PostInfo.model_validate(p) for p in body["posts"]]

    async def stats(self, key_pattern: str | None = None) -> Stats:
        params = {"key_pattern": key_pattern} if key_pattern else None
        return Stats.model_validate(await self._call("GET", "/stats", params=params))

    async def config(self) -> dict[str, Any]:
        body: dict[str, Any] = await self._call("GET", "/config")
        return body

    async def reset(self) -> None:
        await self._call("POST", "/reset")

    async def advance_clock(self, seconds: float) -> float:
        body = await self._call("POST", "/clock/advance", {"seconds": seconds})
        return float(body["now"])

    async def healthy(self) -> bool:
        try:
            await self._call("GET", "/health")
        except httpx.HTTPError:
            return False
        return True
