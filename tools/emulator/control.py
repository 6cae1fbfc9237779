"""The control API under `/_emulator/`: accounts and tokens, latency, limits, faults, processing,
insights, the record of live posts, duplicate statistics, reset and a movable clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.emulator.config import PLATFORMS, TOKEN_POLICIES, Limits
from tools.emulator.faults import FaultSpec
from tools.emulator.state import (
    Account,
    AccountSpec,
    Emulator,
    InsightOverride,
    Outcome,
    Processing,
    account_stats_key,
)

M = TypeVar("M", bound=BaseModel)


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AccountBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accounts: list[AccountSpec]


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audited: bool | None = None
    scopes: list[str] | None = None
    options: dict[str, Any] | None = None
    rotate_refresh_token: bool | None = None


class ExpireBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Literal["access", "refresh", "both"] = "access"  # noqa: S105


class ReconnectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    access_token: str | None = None
    refresh_token: str | None = None
    access_expires_in: float | None = None
    refresh_expires_in: float | None = None


class LatencyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latency_ms: float = Field(ge=0)
    platform: str | None = None
    account_id: str | None = Field(default=None, description="With platform: that account only")


class LimitsBody(BaseModel):
    """Only the fields present change; `null` removes a limit. With `account_id`: that account only."""

    model_config = ConfigDict(extra="forbid")
    platform: str
    account_id: str | None = None
    publish_limit: int | None = Field(default=None, ge=0)
    publish_window_s: float | None = Field(default=None, gt=0)
    request_limit: int | None = Field(default=None, ge=0)
    request_window_s: float | None = Field(default=None, gt=0)


class ProcessingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str | None = None  # None: every platform
    delay_ms: float = Field(ge=0)
    outcome: Outcome = "ok"


class InsightsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str
    remote_id: str
    metrics: dict[str, int] = Field(default_factory=dict)
    not_enough_viewers: bool = False


class AccountStatsBody(BaseModel):
    """Account-level values (followers_count, fan_count, follower_count, subscriberCount, ...) under
    the platform's own names; names not set get a derived value."""

    model_config = ConfigDict(extra="forbid")
    platform: str
    account_id: str
    metrics: dict[str, int]


class VersionsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retired: list[str] = Field(default_factory=list)
    active_from: str | None = None  # YYYYMM: every older version is retired


class AdvanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float


class Control:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    def routes(self) -> list[Route]:
        r = self.route
        return [
            r("/health", self.health, ["GET"]),
            r("/config", self.config, ["GET"]),
            r("/accounts", self.create_account, ["POST"]),
            r("/accounts/batch", self.create_accounts, ["POST"]),
            r("/accounts", self.list_accounts, ["GET"]),
            r("/accounts/{platform}/{account_id}", self.get_account, ["GET"]),
            r("/accounts/{platform}/{account_id}", self.patch_account, ["PATCH"]),
            r("/accounts/{platform}/{account_id}/expire", self.expire, ["POST"]),
            r("/accounts/{platform}/{account_id}/revoke", self.revoke, ["POST"]),
            r("/accounts/{platform}/{account_id}/tokens", self.reconnect, ["POST"]),
            r("/accounts/{platform}/{account_id}/usage", self.usage, ["GET"]),
            r("/latency", self.set_latency, ["PUT"]),
            r("/limits", self.set_limits, ["PUT"]),
            r("/limits", self.get_limits, ["GET"]),
            r("/processing", self.set_processing, ["PUT"]),
            r("/faults", self.add_fault, ["POST"]),
            r("/faults", self.list_faults, ["GET"]),
            r("/faults", self.clear_faults, ["DELETE"]),
            r("/faults/{fault_id}", self.remove_fault, ["DELETE"]),
            r("/insights", self.set_insights, ["PUT"]),
            r("/account-stats", self.set_account_stats, ["PUT"]),
            r("/linkedin/versions", self.set_versions, ["PUT"]),
            r("/posts", self.posts, ["GET"]),
            r("/stats", self.stats, ["GET"]),
            r("/reset", self.reset, ["POST"]),
            r("/clock/advance", self.advance_clock, ["POST"]),
        ]

    @staticmethod
    def route(path: str, handler: Callable[[Request], Awaitable[Any]], methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                result = await handler(request)
            except ControlError as exc:
                return JSONResponse({"error": exc.message}, exc.status)
            except ValidationError as exc:
                return JSONResponse({"error": "invalid body", "details": exc.errors(include_url=False)}, 422)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, 422)
            if isinstance(result, Response):
                return result
            created = request.method == "POST" and path in ("/accounts", "/accounts/batch")
            return JSONResponse(result, 201 if created else 200)

        return Route(path, endpoint, methods=methods)

    @staticmethod
    async def body(request: Request, model: type[M]) -> M:
        raw = await request.body()
        return model.model_validate_json(raw or b"{}")

    @staticmethod
    def platform(name: str | None) -> str:
        if name not in PLATFORMS:
            raise ControlError(404, f"unknown platform {name!r}; one of {', '.join(PLATFORMS)}")
        return name

    def account(self, request: Request) -> Account:
        platform = self.platform(request.path_params["platform"])
        account = self.emu.account(platform, request.path_params["account_id"])
        if account is None:
            raise ControlError(404, f"no account {platform}/{request.path_params['account_id']}")
        return account

    # handlers

    async def health(self, request: Request) -> dict[str, Any]:
        return {"ok": True, "now": self.emu.now()}

    async def config(self, request: Request) -> dict[str, Any]:
        emu = self.emu
        return {
            "latency_ms": emu.latency_s * 1000,
            "platform_latency_ms": {p: s * 1000 for p, s in emu.platform_latency_s.items()},
            "account_latency_ms": {f"{p}/{a}": s * 1000 for (p, a), s in emu.account_latency_s.items()},
            "processing": {p: {"delay_ms": v.delay_s * 1000, "outcome": v.outcome} for p, v in emu.processing.items()},
            "limits": {p: limits.model_dump() for p, limits in emu.limits.items()},
            "container_ttl_s": emu.config.container_ttl_s,
            "linkedin": {"retired": sorted(emu.linkedin_retired), "active_from": emu.linkedin_active_from},
            "clock_offset_s": emu.clock_offset,
        }

    async def create_account(self, request: Request) -> dict[str, Any]:
        return self.emu.create_account(await self.body(request, AccountSpec)).as_json()

    async def create_accounts(self, request: Request) -> dict[str, Any]:
        batch = await self.body(request, AccountBatch)
        return {"accounts": [self.emu.create_account(spec).as_json() for spec in batch.accounts]}

    async def list_accounts(self, request: Request) -> dict[str, Any]:
        platform = request.query_params.get("platform")
        accounts = [a for a in self.emu.accounts.values() if platform is None or a.platform == platform]
        return {"accounts": [a.as_json() for a in accounts]}

    async def get_account(self, request: Request) -> dict[str, Any]:
        return self.account(request).as_json()

    async def patch_account(self, request: Request) -> dict[str, Any]:
        account = self.account(request)
        patch = await self.body(request, AccountPatch)
        if patch.audited is not None:
            account.audited = patch.audited
        if patch.scopes is not None:
            account.scopes = patch.scopes
        if patch.options is not None:
            account.options = patch.options
        if patch.rotate_refresh_token is not None:
            account.rotates_refresh_token = patch.rotate_refresh_token
        return account.as_json()

    async def expire(self, request: Request) -> dict[str, Any]:
        account = self.account(request)
        self.emu.expire_tokens(account, (await self.body(request, ExpireBody)).token)
        return account.as_json()

    async def revoke(self, request: Request) -> dict[str, Any]:
        account = self.account(request)
        account.revoked = True
        return account.as_json()

    async def reconnect(self, request: Request) -> dict[str, Any]:
        """The user reconnects: fresh tokens, the account is no longer revoked."""
        account = self.account(request)
        body = await self.body(request, ReconnectBody)
        policy = TOKEN_POLICIES[account.platform]
        self.emu.issue_tokens(
            account,
            policy.access_ttl_s if body.access_expires_in is None else body.access_expires_in,
            policy.refresh_ttl_s if body.refresh_expires_in is None else body.refresh_expires_in,
            with_refresh=account.refresh_token is not None or body.refresh_token is not None,
            access_token=body.access_token,
            refresh_token=body.refresh_token,
        )
        return account.as_json()

    async def usage(self, request: Request) -> dict[str, Any]:
        account = self.account(request)
        limits = self.emu.limits_of(account)
        now = self.emu.now()
        used, reset = account.usage.request_window(limits, now)
        return {
            "limits": limits.model_dump(),
            "publish_used": account.usage.published_in_window(limits, now),
            "publish_remaining": account.usage.publish_remaining(limits, now),
            "publish_reset_at": account.usage.publish_reset_at(limits, now),
            "requests_used": used,
            "requests_reset_at": reset,
        }

    async def set_latency(self, request: Request) -> dict[str, Any]:
        body = await self.body(request, LatencyBody)
        if body.account_id is not None:
            if body.platform is None:
                raise ControlError(422, "an account's latency needs its platform")
            self.emu.account_latency_s[(self.platform(body.platform), body.account_id)] = body.latency_ms / 1000
        elif body.platform is None:
            self.emu.latency_s = body.latency_ms / 1000
        else:
            self.emu.platform_latency_s[self.platform(body.platform)] = body.latency_ms / 1000
        return await self.config(request)

    async def set_limits(self, request: Request) -> dict[str, Any]:
        body = await self.body(request, LimitsBody)
        platform = self.platform(body.platform)
        changes = {k: getattr(body, k) for k in body.model_fields_set - {"platform", "account_id"}}
        if body.account_id is None:
            self.emu.limits[platform] = Limits.model_validate(self.emu.limits[platform].model_dump() | changes)
            return {"platform": platform, "limits": self.emu.limits[platform].model_dump()}
        account = self.emu.account(platform, body.account_id)
        if account is None:
            raise ControlError(404, f"no account {platform}/{body.account_id}")
        account.limits = Limits.model_validate(self.emu.limits_of(account).model_dump() | changes)
        return {"platform": platform, "account_id": account.account_id, "limits": account.limits.model_dump()}

    async def get_limits(self, request: Request) -> dict[str, Any]:
        return {p: limits.model_dump() for p, limits in self.emu.limits.items()}

    async def set_processing(self, request: Request) -> dict[str, Any]:
        body = await self.body(request, ProcessingBody)
        platforms = PLATFORMS if body.platform is None else (self.platform(body.platform),)
        for platform in platforms:
            self.emu.processing[platform] = Processing(body.delay_ms / 1000, body.outcome)
        return await self.config(request)

    async def add_fault(self, request: Request) -> Response:
        spec = await self.body(request, FaultSpec)
        if spec.platform is not None:
            self.platform(spec.platform)
        return JSONResponse(self.emu.faults.add(spec).as_json(), 201)

    async def list_faults(self, request: Request) -> dict[str, Any]:
        return {"faults": [f.as_json() for f in self.emu.faults.all()]}

    async def clear_faults(self, request: Request) -> dict[str, Any]:
        self.emu.faults.clear()
        return {"faults": []}

    async def remove_fault(self, request: Request) -> dict[str, Any]:
        if not self.emu.faults.remove(request.path_params["fault_id"]):
            raise ControlError(404, f"no fault {request.path_params['fault_id']}")
        return {"removed": request.path_params["fault_id"]}

    async def set_insights(self, request: Request) -> dict[str, Any]:
        body = await self.body(request, InsightsBody)
        platform = self.platform(body.platform)
        if self.emu.post(platform, body.remote_id) is None:
            raise ControlError(404, f"no post {platform}/{body.remote_id}")
        self.emu.insights[(platform, body.remote_id)] = InsightOverride(body.metrics, body.not_enough_viewers)
        return body.model_dump()

    async def set_account_stats(self, request: Request) -> dict[str, Any]:
        body = await self.body(request, AccountStatsBody)
        platform = self.platform(body.platform)
        if self.emu.account(platform, body.account_id) is None:
            raise ControlError(404, f"no account {platform}/{body.account_id}")
        self.emu.insights[(platform, account_stats_key(body.account_id))] = InsightOverride(body.metrics)
        return body.model_dump()

    async def set_versions(self, request: Request) -> dict[str, Any]:
        body = await self.body(request, VersionsBody)
        self.emu.linkedin_retired = set(body.retired)
        self.emu.linkedin_active_from = body.active_from
        return body.model_dump()

    async def posts(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        platform, account_id = q.get("platform"), q.get("account_id")
        since = float(q["since"]) if q.get("since") else None
        now = self.emu.now()
        posts = [
            p.as_json(now)
            for p in self.emu.posts
            if (platform is None or p.platform == platform)
            and (account_id is None or p.account_id == account_id)
            and (since is None or p.created_at >= since)
        ]
        limit = int(q.get("limit") or 0)
        return {"count": len(posts), "posts": posts[-limit:] if limit else posts}

    async def stats(self, request: Request) -> dict[str, Any]:
        return self.emu.stats(request.query_params.get("key_pattern"))

    async def reset(self, request: Request) -> dict[str, Any]:
        self.emu.reset()
        return {"ok": True}

    async def advance_clock(self, request: Request) -> dict[str, Any]:
        self.emu.clock_offset += (await self.body(request, AdvanceBody)).seconds
        return {"now": self.emu.now(), "clock_offset_s": self.emu.clock_offset}
