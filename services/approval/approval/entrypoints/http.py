"""HTTP routes of the approval service: decode, authenticate, call a handler, publish what it returns.

Every error is JSON `{"error": {"code", "message", "violations": [{"rule", "message", "target_id"}]}}`.
The caller's workspace comes from its API key, so no route can reach another workspace's data.
"""

import hmac
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime
from starlette.exceptions import HTTPException as StarletteHTTPException

from approval import handlers
from approval.domain import AssetState, DomainError, PostStatus, local_time
from approval.entrypoints.schemas import (
    AccountConnect,
    AccountOut,
    AccountReconnect,
    AccountUpdate,
    ApproveIn,
    AssetContentIn,
    AssetIn,
    AssetOut,
    AssetPostsOut,
    AssetVersionIn,
    AssetVersionsOut,
    AttemptsOut,
    BootstrapOut,
    BulkFailure,
    BulkIds,
    BulkOut,
    BulkRejectIn,
    CalendarEntry,
    CalendarOut,
    CallerWorkspaceOut,
    CancelIn,
    CommandOut,
    ErrorResponse,
    KeyCreate,
    KeyCreatedOut,
    KeyOut,
    PageOut,
    PolicyChangeOut,
    PolicyIn,
    PolicyOut,
    PostOut,
    RegenerateIn,
    RejectIn,
    RescheduleIn,
    SlotFilledOut,
    SlotFillIn,
    SlotIn,
    SlotOut,
    SlotUpdate,
    SubmitIn,
    WorkspaceCreate,
    WorkspaceOut,
    WorkspaceUpdate,
)
from approval.handlers import AssetDraft, Ports, Principal
from approval.ports import AssetQuery, Outgoing, Page, PostQuery, SlotQuery
from approval.settings import ApprovalSettings
from shared.events import AccountStatus, Platform
from shared.logging import get_logger

log = get_logger(__name__)

Emit = Callable[[Sequence[Outgoing]], Awaitable[None]]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Bad request",
        401: "Missing or unknown API key",
        403: "The key's role does not allow this",
        404: "Not found in the caller's workspace",
        409: "Conflicts with the current state",
        422: "Invalid input; violations name the target and rule",
        503: "Kafka unavailable; nothing was sent",
    }.items()
}


class EventsUnavailable(DomainError):
    code = "events_unavailable"
    status = 503


def error_response(status: int, code: str, message: str, violations: Sequence[dict[str, Any]] = ()) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "violations": list(violations)}}, status_code=status
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        violations = [{"rule": v.rule, "message": v.message, "target_id": v.target_id} for v in exc.violations]
        return error_response(exc.status, exc.code, exc.message, violations)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the input back: it may hold tokens.
        violations = [
            {
                "rule": str(err.get("type", "invalid")),
                "message": f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}",
                "target_id": _target_of(err.get("loc", ())),
            }
            for err in exc.errors()
        ]
        first = str(violations[0]["message"]) if violations else "invalid request"
        return error_response(422, "invalid_request", first, violations)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", error_type=type(exc).__name__)
        return error_response(500, "internal_error", "unexpected error; it has been logged")


def _target_of(loc: Sequence[Any]) -> str | None:
    parts = list(loc)
    if "targets" in parts:
        index = parts.index("targets") + 1
        if index < len(parts):
            return f"targets[{parts[index]}]"
    return None


def _page(items: list[Any], page: Page) -> int | None:
    return page.offset + page.limit if len(items) == page.limit else None


def page_params(
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> Page:
    return Page(offset=offset, limit=limit)


def build_router(ports: Ports, emit: Emit, settings: ApprovalSettings) -> APIRouter:  # noqa: PLR0915
    bootstrap_token = settings.bootstrap_token
    router = APIRouter(prefix="/v1", responses=ERRORS)
    bearer = HTTPBearer(auto_error=False, description="An API key: sp_<id>_<secret>")

    async def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        return await handlers.authenticate(ports, credentials.credentials if credentials else None)

    Caller = Annotated[Principal, Depends(principal)]  # noqa: N806 - a type alias
    Paging = Annotated[Page, Depends(page_params)]  # noqa: N806 - a type alias

    # ---- workspaces and keys

    @router.post("/workspaces", status_code=201, tags=["workspaces"], summary="Bootstrap a workspace")
    async def create_workspace(
        body: WorkspaceCreate, x_bootstrap_token: Annotated[str | None, Header()] = None
    ) -> BootstrapOut:
        """Create a workspace and its first admin API key. Needs the operator's bootstrap token
        (setting `APPROVAL_BOOTSTRAP_TOKEN`) in `X-Bootstrap-Token`; off when it is not set."""
        expected = bootstrap_token.get_secret_value() if bootstrap_token else ""
        if not expected or not hmac.compare_digest(expected.encode(), (x_bootstrap_token or "").encode()):
            raise handlers.Unauthenticated(
                "creating a workspace needs the bootstrap token in X-Bootstrap-Token", code="bootstrap_refused"
            )
        workspace, key = await handlers.bootstrap_workspace(
            ports, name=body.name, timezone=body.timezone, admin_key_name=body.admin_key_name
        )
        return BootstrapOut(workspace=WorkspaceOut.of(workspace), api_key=key)

    @router.get("/workspace", tags=["workspaces"], summary="The caller's workspace")
    async def get_workspace(caller: Caller) -> CallerWorkspaceOut:
        workspace = await handlers.get_workspace(ports, caller)
        return CallerWorkspaceOut.model_validate(
            {**workspace.model_dump(), "caller_key_id": caller.key_id, "caller_role": caller.role}
        )

    @router.patch("/workspace", tags=["workspaces"], summary="Change settings, e.g. switch publishing on (admin)")
    async def update_workspace(body: WorkspaceUpdate, caller: Caller) -> WorkspaceOut:
        return WorkspaceOut.of(await handlers.update_workspace(ports, caller, **body.model_dump()))

    @router.get("/keys", tags=["keys"], summary="List API keys (admin)")
    async def list_keys(caller: Caller, page: Paging) -> PageOut[KeyOut]:
        keys = await handlers.list_keys(ports, caller, page)
        return PageOut[KeyOut](items=[KeyOut.of(k) for k in keys], next_offset=_page(keys, page))

    @router.post("/keys", status_code=201, tags=["keys"], summary="Create an API key (admin)")
    async def create_key(body: KeyCreate, caller: Caller) -> KeyCreatedOut:
        key, plaintext = await handlers.create_key(ports, caller, name=body.name, role=body.role)
        return KeyCreatedOut(**KeyOut.of(key).model_dump(), api_key=plaintext)

    @router.delete("/keys/{key_id}", tags=["keys"], summary="Revoke an API key (admin)")
    async def revoke_key(key_id: str, caller: Caller) -> KeyOut:
        return KeyOut.of(await handlers.revoke_key(ports, caller, key_id))

    # ---- accounts

    @router.get("/accounts", tags=["accounts"], summary="List connected accounts")
    async def list_accounts(
        caller: Caller, page: Paging, platform: Platform | None = None, status: AccountStatus | None = None
    ) -> PageOut[AccountOut]:
        accounts = await handlers.list_accounts(ports, caller, page, platform, status)
        return PageOut[AccountOut](items=[AccountOut.of(a) for a in accounts], next_offset=_page(accounts, page))

    @router.post("/accounts", status_code=201, tags=["accounts"], summary="Connect an account with its tokens (admin)")
    async def connect_account(body: AccountConnect, caller: Caller) -> AccountOut:
        account, outgoing = await handlers.connect_account(
            ports,
            caller,
            platform=body.platform,
            handle=body.handle,
            remote_id=body.remote_id,
            profile=body.profile,
            timezone=body.timezone,
            tokens=body.tokens.tokens(),
        )
        await emit(outgoing)
        return AccountOut.of(account)

    @router.get("/accounts/{account_id}", tags=["accounts"], summary="One account")
    async def get_account(account_id: str, caller: Caller) -> AccountOut:
        return AccountOut.of(await handlers.get_account(ports, caller, account_id))

    @router.patch("/accounts/{account_id}", tags=["accounts"], summary="Change handle or timezone (admin)")
    async def update_account(account_id: str, body: AccountUpdate, caller: Caller) -> AccountOut:
        account = await handlers.update_account(ports, caller, account_id, handle=body.handle, timezone=body.timezone)
        return AccountOut.of(account)

    @router.post("/accounts/{account_id}/reconnect", tags=["accounts"], summary="New tokens; held posts resume (admin)")
    async def reconnect_account(account_id: str, body: AccountReconnect, caller: Caller) -> AccountOut:
        account, outgoing = await handlers.reconnect_account(ports, caller, account_id, tokens=body.tokens.tokens())
        await emit(outgoing)
        return AccountOut.of(account)

    @router.post(
        "/accounts/{account_id}/verify", status_code=202, tags=["accounts"], summary="Check the token now (admin)"
    )
    async def verify_account(account_id: str, caller: Caller) -> AccountOut:
        outgoing = await handlers.verify_account(ports, caller, account_id)
        await emit(outgoing)
        return AccountOut.of(await handlers.get_account(ports, caller, account_id))

    # ---- assets

    def _draft(body: AssetContentIn) -> AssetDraft:
        return AssetDraft(
            caption=body.caption,
            media=[m.ref() for m in body.media],
            targets=list(body.targets),
            schedule=body.schedule,
            campaign=body.campaign,
            source=body.source,
        )

    @router.post(
        "/assets", status_code=201, tags=["assets"], summary="Create content for approval, or a draft (editor)"
    )
    async def create_asset(body: AssetIn, caller: Caller) -> AssetOut:
        asset, outgoing = await handlers.create_asset(ports, caller, _draft(body), as_draft=body.draft)
        await emit(outgoing)
        return AssetOut.of(asset)

    @router.get("/assets", tags=["assets"], summary="The approval board")
    async def list_assets(
        *,
        caller: Caller,
        page: Paging,
        state: AssetState | None = None,
        campaign: Annotated[str | None, Query(max_length=200)] = None,
        deleted: bool = False,
        sort: Literal["created_at", "updated_at"] = "created_at",
        order: Literal["asc", "desc"] = "desc",
    ) -> PageOut[AssetOut]:
        query = AssetQuery(state=state, campaign=campaign, deleted=deleted, sort=sort, order=order)
        assets = await handlers.list_assets(ports, caller, query, page)
        return PageOut[AssetOut](items=[AssetOut.of(a) for a in assets], next_offset=_page(assets, page))

    # Before the /assets/{asset_id}/... routes, which would otherwise match "bulk" as an id.
    def _bulk(result: handlers.BulkResult) -> BulkOut:
        return BulkOut(
            succeeded=result.succeeded,
            failed=[BulkFailure(asset_id=k, code=c, message=m) for k, (c, m) in result.failed.items()],
        )

    @router.post("/assets/bulk/approve", tags=["approval"], summary="Approve many (all targets each)")
    async def bulk_approve(body: BulkIds, caller: Caller) -> BulkOut:
        result = await handlers.bulk_approve(ports, caller, body.asset_ids)
        await emit(result.outgoing)
        return _bulk(result)

    @router.post("/assets/bulk/reject", tags=["approval"], summary="Reject or discard many")
    async def bulk_reject(body: BulkRejectIn, caller: Caller) -> BulkOut:
        result = await handlers.bulk_reject(ports, caller, body.asset_ids, reason=body.reason, discard=body.discard)
        await emit(result.outgoing)
        return _bulk(result)

    @router.post("/assets/bulk/delete", tags=["assets"], summary="Soft delete many (restorable for 30 days)")
    async def bulk_delete(body: BulkIds, caller: Caller) -> BulkOut:
        return _bulk(await handlers.bulk_delete(ports, caller, body.asset_ids))

    @router.post("/assets/bulk/restore", tags=["assets"], summary="Restore soft-deleted assets")
    async def bulk_restore(body: BulkIds, caller: Caller) -> BulkOut:
        return _bulk(await handlers.bulk_restore(ports, caller, body.asset_ids))

    @router.get("/assets/{asset_id}", tags=["assets"], summary="One asset with its history")
    async def get_asset(asset_id: str, caller: Caller) -> AssetOut:
        return AssetOut.of(await handlers.get_asset(ports, caller, asset_id))

    @router.post("/assets/{asset_id}/versions", tags=["assets"], summary="Edit: save a new version (editor)")
    async def edit_asset(asset_id: str, body: AssetVersionIn, caller: Caller) -> AssetOut:
        """A draft stays a draft; pending content stays queued or goes back to draft, as the
        workspace's `pending_edits` says; content sent back for regeneration is queued again."""
        asset, outgoing = await handlers.edit_asset(ports, caller, asset_id, _draft(body), body.expected_version)
        await emit(outgoing)
        return AssetOut.of(asset)

    @router.get("/assets/{asset_id}/versions", tags=["assets"], summary="The content of every version")
    async def asset_versions(asset_id: str, caller: Caller) -> AssetVersionsOut:
        asset = await handlers.get_asset(ports, caller, asset_id)
        return AssetVersionsOut(asset_id=asset.asset_id, version=asset.version, versions=asset.versions)

    @router.post("/assets/{asset_id}/submit", tags=["assets"], summary="Submit a draft for approval (editor)")
    async def submit(asset_id: str, body: SubmitIn, caller: Caller) -> AssetOut:
        asset, outgoing = await handlers.submit(ports, caller, asset_id, body.expected_version)
        await emit(outgoing)
        return AssetOut.of(asset)

    @router.post("/assets/{asset_id}/approve", tags=["approval"], summary="Approve, optionally deselecting targets")
    async def approve(asset_id: str, body: ApproveIn, caller: Caller) -> AssetOut:
        asset, outgoing = await handlers.approve(
            ports, caller, asset_id, deselect=body.deselect_targets, expected_version=body.expected_version
        )
        await emit(outgoing)
        return AssetOut.of(asset)

    @router.post("/assets/{asset_id}/reject", tags=["approval"], summary="Reject or discard with a reason")
    async def reject(asset_id: str, body: RejectIn, caller: Caller) -> AssetOut:
        asset, outgoing = await handlers.reject(
            ports, caller, asset_id, reason=body.reason, discard=body.discard, expected_version=body.expected_version
        )
        await emit(outgoing)
        return AssetOut.of(asset)

    @router.post("/assets/{asset_id}/regenerate", tags=["approval"], summary="Send back with feedback")
    async def regenerate(asset_id: str, body: RegenerateIn, caller: Caller) -> AssetOut:
        asset, outgoing = await handlers.request_regeneration(
            ports, caller, asset_id, feedback=body.feedback, expected_version=body.expected_version
        )
        await emit(outgoing)
        return AssetOut.of(asset)

    @router.get("/assets/{asset_id}/posts", tags=["posts"], summary="An asset's posts and aggregate status")
    async def asset_posts(asset_id: str, caller: Caller) -> AssetPostsOut:
        asset, posts = await handlers.asset_posts(ports, caller, asset_id)
        now = ports.clock.now()
        return AssetPostsOut(
            asset_id=asset.asset_id,
            state=asset.state,
            aggregate_status=AssetOut.of(asset).aggregate_status,
            posts=[PostOut.of(p, now) for p in posts],
        )

    # ---- posts

    @router.get("/posts", tags=["posts"], summary="Posts, filtered")
    async def list_posts(
        *,
        caller: Caller,
        page: Paging,
        asset_id: Annotated[str | None, Query(max_length=200)] = None,
        account_id: Annotated[str | None, Query(max_length=200)] = None,
        platform: Platform | None = None,
        status: Annotated[list[PostStatus] | None, Query()] = None,
        campaign: Annotated[str | None, Query(max_length=200)] = None,
        order: Literal["asc", "desc"] = "asc",
    ) -> PageOut[PostOut]:
        query = PostQuery(
            asset_id=asset_id,
            account_id=account_id,
            platform=platform,
            statuses=status or (),
            campaign=campaign,
            order=order,
        )
        posts = await handlers.list_posts(ports, caller, query, page)
        now = ports.clock.now()
        return PageOut[PostOut](items=[PostOut.of(p, now) for p in posts], next_offset=_page(posts, page))

    @router.get("/posts/{post_id}", tags=["posts"], summary="One post's status")
    async def get_post(post_id: str, caller: Caller) -> PostOut:
        return PostOut.of(await handlers.get_post(ports, caller, post_id), ports.clock.now())

    @router.get("/posts/{post_id}/attempts", tags=["posts"], summary="Every publish attempt of a post and its outcome")
    async def post_attempts(post_id: str, caller: Caller) -> AttemptsOut:
        return AttemptsOut.of(post_id, await handlers.post_attempts(ports, caller, post_id))

    async def _command(post_id: str, outgoing: list[Outgoing]) -> CommandOut:
        await emit(outgoing)
        event = outgoing[0].event
        return CommandOut(post_id=post_id, command=event.event_type, command_event_id=str(event.event_id))

    @router.post("/posts/{post_id}/publish-now", status_code=202, tags=["posts"], summary="Publish now (editor)")
    async def publish_now(post_id: str, caller: Caller) -> CommandOut:
        return await _command(post_id, await handlers.publish_now(ports, caller, post_id))

    @router.post("/posts/{post_id}/reschedule", status_code=202, tags=["posts"], summary="Reschedule (editor)")
    async def reschedule(post_id: str, body: RescheduleIn, caller: Caller) -> CommandOut:
        return await _command(post_id, await handlers.reschedule_post(ports, caller, post_id, body.schedule))

    @router.post("/posts/{post_id}/cancel", status_code=202, tags=["posts"], summary="Cancel (editor)")
    async def cancel(post_id: str, body: CancelIn, caller: Caller) -> CommandOut:
        return await _command(post_id, await handlers.cancel_post(ports, caller, post_id, reason=body.reason))

    @router.post("/posts/{post_id}/retry", status_code=202, tags=["posts"], summary="Retry a failed post (editor)")
    async def retry(post_id: str, caller: Caller) -> CommandOut:
        return await _command(post_id, await handlers.retry_post(ports, caller, post_id))

    # ---- approval policies

    @router.get("/approval-policies", tags=["policies"], summary="Approval policies of the workspace")
    async def list_policies(caller: Caller, page: Paging) -> PageOut[PolicyOut]:
        policies = await handlers.list_policies(ports, caller, page)
        return PageOut[PolicyOut](items=[PolicyOut.of(p) for p in policies], next_offset=_page(policies, page))

    @router.put("/approval-policies", tags=["policies"], summary="Set the policy of a scope (admin; audited)")
    async def set_policy(body: PolicyIn, caller: Caller) -> PolicyOut:
        policy = await handlers.set_policy(ports, caller, scope=body.scope, scope_id=body.scope_id, rules=body.rules())
        return PolicyOut.of(policy)

    @router.get("/approval-policies/changes", tags=["policies"], summary="Audit trail of policy changes (admin)")
    async def policy_changes(caller: Caller, page: Paging) -> PageOut[PolicyChangeOut]:
        changes = await handlers.policy_changes(ports, caller, page)
        return PageOut[PolicyChangeOut](
            items=[PolicyChangeOut.of(c) for c in changes], next_offset=_page(changes, page)
        )

    # ---- content plan slots

    @router.post("/slots", status_code=201, tags=["slots"], summary="Plan a slot (editor)")
    async def create_slot(body: SlotIn, caller: Caller) -> SlotOut:
        slot = await handlers.create_slot(
            ports, caller, account_id=body.account_id, at=body.at, fmt=body.format, brief=body.brief
        )
        return SlotOut.of(slot)

    @router.get("/slots", tags=["slots"], summary="Planned slots, filled or not")
    async def list_slots(
        *,
        caller: Caller,
        page: Paging,
        start: AwareDatetime | None = None,
        end: AwareDatetime | None = None,
        account_id: Annotated[str | None, Query(max_length=200)] = None,
        empty: bool = False,
    ) -> PageOut[SlotOut]:
        query = SlotQuery(account_id=account_id, start=start, end=end, empty_only=empty)
        found = await handlers.list_slots(ports, caller, query, page)
        return PageOut[SlotOut](items=[SlotOut.of(s) for s in found], next_offset=_page(found, page))

    @router.get("/slots/gaps", tags=["slots"], summary="Empty slots due soon")
    async def slot_gaps(
        caller: Caller, page: Paging, horizon_hours: Annotated[float | None, Query(gt=0, le=24 * 93)] = None
    ) -> PageOut[SlotOut]:
        horizon = timedelta(hours=horizon_hours or settings.slot_gap_horizon_hours)
        found = await handlers.slot_gaps(ports, caller, horizon, page)
        return PageOut[SlotOut](items=[SlotOut.of(s) for s in found], next_offset=_page(found, page))

    @router.get("/slots/{slot_id}", tags=["slots"], summary="One slot")
    async def get_slot(slot_id: str, caller: Caller) -> SlotOut:
        return SlotOut.of(await handlers.get_slot(ports, caller, slot_id))

    @router.patch("/slots/{slot_id}", tags=["slots"], summary="Move a slot or change its format or brief (editor)")
    async def update_slot(slot_id: str, body: SlotUpdate, caller: Caller) -> SlotOut:
        slot, outgoing = await handlers.update_slot(
            ports, caller, slot_id, at=body.at, fmt=body.format, brief=body.brief
        )
        await emit(outgoing)
        return SlotOut.of(slot)

    @router.post("/slots/{slot_id}/fill", tags=["slots"], summary="Fill a slot with an asset (editor)")
    async def fill_slot(slot_id: str, body: SlotFillIn, caller: Caller) -> SlotFilledOut:
        slot, asset, outgoing = await handlers.fill_slot(ports, caller, slot_id, body.asset_id)
        await emit(outgoing)
        return SlotFilledOut(slot=SlotOut.of(slot), asset=AssetOut.of(asset))

    @router.delete("/slots/{slot_id}", status_code=204, tags=["slots"], summary="Remove a slot (editor)")
    async def delete_slot(slot_id: str, caller: Caller) -> None:
        await handlers.delete_slot(ports, caller, slot_id)

    # ---- calendar

    @router.get(
        "/calendar",
        tags=["calendar"],
        summary="Posts of every account in a time range, and the planned content slots in it",
    )
    async def calendar(
        *,
        caller: Caller,
        page: Paging,
        start: AwareDatetime,
        end: AwareDatetime,
        platform: Platform | None = None,
        account_id: Annotated[str | None, Query(max_length=200)] = None,
        status: Annotated[list[PostStatus] | None, Query()] = None,
        campaign: Annotated[str | None, Query(max_length=200)] = None,
    ) -> CalendarOut:
        query = PostQuery(account_id=account_id, platform=platform, statuses=status or (), campaign=campaign)
        workspace, posts, slots = await handlers.calendar(ports, caller, start=start, end=end, query=query, page=page)
        now = ports.clock.now()
        return CalendarOut(
            timezone=workspace.timezone,
            start=start,
            end=end,
            entries=[_entry(p, now, workspace.timezone) for p in posts],
            slots=[SlotOut.of(s) for s in slots],
            next_offset=_page(posts, page),
        )

    return router


def _entry(post: Any, now: datetime, timezone: str) -> CalendarEntry:
    out = PostOut.of(post, now)
    return CalendarEntry(
        post_id=out.post_id,
        asset_id=out.asset_id,
        platform=out.platform,
        account_id=out.account_id,
        format=out.format,
        status=out.status,
        campaign=out.campaign,
        due_at=out.due_at,
        local_time=local_time(out.due_at, timezone) if out.due_at else None,
        permalink=out.permalink,
    )
