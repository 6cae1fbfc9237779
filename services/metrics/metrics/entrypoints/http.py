"""HTTP read API of the metrics service: per post, per asset, per account, rollups, and refresh now.

Same model as the approval service: `Authorization: Bearer sp_<id>_<secret>` API keys (checked
by asking the approval service, which owns them), the caller's workspace comes from its key so no
route can reach another workspace's data (another tenant's post is a 404), and every error is
JSON `{"error": {"code", "message", "violations": [...]}}`.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from metrics.account_handlers import AccountReading, AccountSnapshots
from metrics.adapters.approval import ApprovalKeys, Caller, KeyCheckUnavailable, KeyRefused
from metrics.domain import Freshness, Rollup
from metrics.handlers import MetricsService, NotFound, Reading, RefreshRefused
from metrics.ports import Clock, Snapshot
from shared.logging import get_logger

log = get_logger(__name__)

ROLES = ("viewer", "editor", "approver", "admin")  # cumulative, as in the approval service
MAX_ROLLUP_RANGE = timedelta(days=400)


class ErrorBody(BaseModel):
    code: str
    message: str
    violations: list[dict[str, Any]] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class FreshnessOut(BaseModel):
    state: Freshness
    collected_at: datetime | None
    age_seconds: float | None
    collected_reason: str | None


class PostMetricsOut(BaseModel):
    post_id: str
    asset_id: str
    platform: str
    account_id: str
    remote_id: str
    campaign: str | None
    published_at: datetime
    metrics: dict[str, int | None] | None
    status: str
    status_note: str | None
    freshness: FreshnessOut
    syncing: bool
    next_pull_at: datetime | None
    last_attempt_at: datetime | None
    last_refresh_at: datetime | None
    snapshots: int

    @classmethod
    def of(cls, reading: Reading) -> "PostMetricsOut":
        view, post = reading.view, reading.view.post
        return cls(
            post_id=post.post_id,
            asset_id=post.asset_id,
            platform=post.platform.value,
            account_id=post.account_id,
            remote_id=post.remote_id,
            campaign=post.campaign,
            published_at=post.published_at,
            metrics=view.metrics,
            status=post.status.value,
            status_note=view.status_note,
            freshness=FreshnessOut(
                state=reading.freshness,
                collected_at=view.collected_at,
                age_seconds=reading.age_seconds,
                collected_reason=view.collected_reason,
            ),
            syncing=post.plan is not None,
            next_pull_at=post.plan.due_at if post.plan else None,
            last_attempt_at=view.last_attempt_at,
            last_refresh_at=view.last_refresh_at,
            snapshots=view.snapshots,
        )


class AccountMetricsOut(BaseModel):
    account_id: str
    platform: str
    metrics: dict[str, int | None] | None
    status: str
    status_note: str | None
    freshness: FreshnessOut
    next_snapshot_at: datetime | None
    last_attempt_at: datetime | None
    snapshots: int

    @classmethod
    def of(cls, reading: AccountReading) -> "AccountMetricsOut":
        view, account = reading.view, reading.view.account
        return cls(
            account_id=account.account_id,
            platform=account.platform.value,
            metrics=view.metrics,
            status=account.status.value,
            status_note=view.status_note,
            freshness=FreshnessOut(
                state=reading.freshness,
                collected_at=view.collected_at,
                age_seconds=reading.age_seconds,
                collected_reason=view.collected_reason,
            ),
            next_snapshot_at=account.plan.due_at if account.plan else None,
            last_attempt_at=view.last_attempt_at,
            snapshots=view.snapshots,
        )


class AssetMetricsOut(BaseModel):
    asset_id: str
    posts: list[PostMetricsOut]
    totals: dict[str, int | None]


class SnapshotOut(BaseModel):
    seq: int
    collected_at: datetime
    reason: str
    status: str
    metrics: dict[str, int | None]
    raw: dict[str, Any]

    @classmethod
    def of(cls, s: Snapshot) -> "SnapshotOut":
        return cls(
            seq=s.seq, collected_at=s.collected_at, reason=s.reason, status=s.status, metrics=s.metrics, raw=s.raw
        )


class HistoryOut(BaseModel):
    post_id: str
    items: list[SnapshotOut]
    next_before: int | None


class AccountHistoryOut(BaseModel):
    account_id: str
    items: list[SnapshotOut]
    next_before: int | None


class RollupGroup(BaseModel):
    key: str | None
    posts: int
    posts_with_metrics: int
    sums: dict[str, int]
    posts_with_value: dict[str, int]

    @classmethod
    def of(cls, r: Rollup) -> "RollupGroup":
        return cls(
            key=r.key,
            posts=r.posts,
            posts_with_metrics=r.posts_with_metrics,
            sums=r.sums,
            posts_with_value=r.with_value,
        )


class RollupOut(BaseModel):
    by: str
    start: datetime
    end: datetime
    groups: list[RollupGroup]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        401: "Missing or unknown API key",
        403: "The key's role does not allow this",
        404: "Not found in the caller's workspace",
        409: "The post's platform has no metrics",
        422: "Invalid input",
        429: "Refreshed too recently, or the platform's rate limit is reached (see Retry-After)",
        503: "The approval service, which verifies keys, is unreachable",
    }.items()
}


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, violations: Sequence[Any] = ()
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "violations": list(violations)}}
    return JSONResponse(body, status_code=status, headers=headers)


class Forbidden(Exception):
    pass


def install_error_handlers(app: FastAPI, clock: Clock) -> None:
    @app.exception_handler(KeyRefused)
    async def refused(_request: Request, exc: KeyRefused) -> JSONResponse:
        return error_response(401, exc.code, exc.message)

    @app.exception_handler(KeyCheckUnavailable)
    async def unavailable(_request: Request, exc: KeyCheckUnavailable) -> JSONResponse:
        return error_response(503, "auth_unavailable", str(exc))

    @app.exception_handler(Forbidden)
    async def forbidden(_request: Request, exc: Forbidden) -> JSONResponse:
        return error_response(403, "forbidden", str(exc))

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    @app.exception_handler(RefreshRefused)
    async def refresh_refused(_request: Request, exc: RefreshRefused) -> JSONResponse:
        if exc.code == "unsupported_platform":
            return error_response(409, exc.code, exc.reason)
        headers = {}
        if exc.retry_at is not None:
            wait = max(1, int((exc.retry_at - clock.now()).total_seconds() + 0.999))
            headers["Retry-After"] = str(wait)
        return error_response(429, exc.code, exc.reason, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        violations = [
            {
                "rule": str(err.get("type", "invalid")),
                "message": f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}",
                "target_id": None,
            }
            for err in exc.errors()
        ]
        first = str(violations[0]["message"]) if violations else "invalid request"
        return error_response(422, "invalid_request", first, violations=violations)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", error_type=type(exc).__name__)
        return error_response(500, "internal_error", "unexpected error; it has been logged")


def role_allows(role: str, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def build_router(
    service: MetricsService,
    accounts: AccountSnapshots,
    keys: ApprovalKeys,
    clock: Clock,
    *,
    refresh_role: str,
    unreported_role: str,
) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=ERRORS)
    bearer = HTTPBearer(auto_error=False, description="An API key of the approval service: sp_<id>_<secret>")

    async def caller(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
        header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
        return await keys.verify(header)

    Who = Annotated[Caller, Depends(caller)]  # noqa: N806 - a type alias

    @router.get("/posts/{post_id}/metrics", tags=["metrics"], summary="A post's latest metrics with freshness")
    async def post_metrics(post_id: str, who: Who) -> PostMetricsOut:
        return PostMetricsOut.of(await service.read(post_id, who.workspace_id))

    @router.get("/posts/{post_id}/metrics/history", tags=["metrics"], summary="Every snapshot of a post, newest first")
    async def post_history(
        post_id: str,
        who: Who,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        before: Annotated[int | None, Query(ge=1, description="next_before of the previous page")] = None,
    ) -> HistoryOut:
        items = await service.history(post_id, who.workspace_id, limit, before)
        next_before = items[-1].seq if len(items) == limit and items[-1].seq > 1 else None
        return HistoryOut(post_id=post_id, items=[SnapshotOut.of(s) for s in items], next_before=next_before)

    @router.post(
        "/posts/{post_id}/metrics/refresh",
        tags=["metrics"],
        summary="Pull this post's insights now (editor; at most once per interval per post)",
    )
    async def refresh(post_id: str, who: Who) -> PostMetricsOut:
        role = who.role or unreported_role
        if not role_allows(role, refresh_role):
            raise Forbidden(f"refreshing needs the {refresh_role} role; the API key has {role}")
        return PostMetricsOut.of(await service.refresh_now(post_id, who.workspace_id))

    @router.get(
        "/accounts/{account_id}/metrics", tags=["accounts"], summary="An account's latest daily snapshot with freshness"
    )
    async def account_metrics(account_id: str, who: Who) -> AccountMetricsOut:
        return AccountMetricsOut.of(await accounts.read(account_id, who.workspace_id))

    @router.get(
        "/accounts/{account_id}/metrics/history",
        tags=["accounts"],
        summary="Every snapshot of an account, newest first",
    )
    async def account_history(
        account_id: str,
        who: Who,
        limit: Annotated[int, Query(ge=1, le=400)] = 60,
        before: Annotated[int | None, Query(ge=1, description="next_before of the previous page")] = None,
    ) -> AccountHistoryOut:
        items = await accounts.history(account_id, who.workspace_id, limit, before)
        next_before = items[-1].seq if len(items) == limit and items[-1].seq > 1 else None
        return AccountHistoryOut(
            account_id=account_id, items=[SnapshotOut.of(s) for s in items], next_before=next_before
        )

    @router.get("/assets/{asset_id}/metrics", tags=["metrics"], summary="Engagement of an asset on each platform")
    async def asset_metrics(asset_id: str, who: Who) -> AssetMetricsOut:
        readings = await service.read_asset(asset_id, who.workspace_id)
        posts = [PostMetricsOut.of(r) for r in readings]
        totals = Rollup(asset_id)
        for post in posts:
            totals.add(post.metrics)
        summed: dict[str, int | None] = {
            name: totals.sums[name] if totals.with_value[name] else None for name in totals.sums
        }
        return AssetMetricsOut(asset_id=asset_id, posts=posts, totals=summed)

    @router.get("/metrics/rollups", tags=["rollups"], summary="Sums by campaign, account, platform or workspace")
    async def rollups(
        who: Who,
        *,
        by: Literal["campaign", "account", "platform", "workspace"] = "campaign",
        start: Annotated[AwareDatetime | None, Query(alias="from", description="published at or after")] = None,
        end: Annotated[AwareDatetime | None, Query(alias="to", description="published before")] = None,
        platform: str | None = None,
        account_id: str | None = None,
        campaign: str | None = None,
    ) -> RollupOut:
        end = end or clock.now()
        start = start or end - timedelta(days=30)
        if not start < end or end - start > MAX_ROLLUP_RANGE:
            raise RequestValidationError(
                [{"type": "invalid_range", "loc": ("query", "from"), "msg": "from must be before to, within 400 days"}]
            )
        groups = await service.rollup(
            who.workspace_id,
            by=by,
            start=start,
            end=end,
            platform=platform,
            account_id=account_id,
            campaign=campaign,
        )
        return RollupOut(by=by, start=start, end=end, groups=[RollupGroup.of(g) for g in groups])

    return router
