"""What every platform module shares: the per-call gate (latency, token, request window, faults,
publishing quota), error rendering, request parameter decoding and the lost-response behaviour."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tools.emulator.errors import ConnectionDropped, Reason, Rejection
from tools.emulator.faults import Fault, FaultKind, Op
from tools.emulator.state import Account, Emulator

Handler = Callable[[Request], Awaitable[Response]]
Json = dict[str, Any]

_LOST = "emulator.lost"

_FAULT_REASONS = {
    FaultKind.RATE_LIMIT: Reason.RATE_LIMITED,
    FaultKind.SERVER_ERROR: Reason.SERVER_ERROR,
    FaultKind.TOKEN_EXPIRED: Reason.TOKEN_EXPIRED,
    FaultKind.CONTENT_REJECTED: Reason.CONTENT_REJECTED,
    FaultKind.SPAM: Reason.SPAM,
}


class DroppedConnection(Response):
    """Starts the response, then fails so the server closes the connection before the body."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        raise ConnectionDropped("response deliberately lost by the emulator")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in {"bearer", "oauth"} else None


async def read_params(request: Request) -> Json:
    """Query string merged with a JSON or form-encoded body (the Graph and Bot APIs accept all three)."""
    params: Json = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    content_type = request.headers.get("content-type", "")
    if "json" in content_type or body[:1] in (b"{", b"["):
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise Rejection(Reason.INVALID, "The request body is not valid JSON.") from exc
        if not isinstance(decoded, dict):
            raise Rejection(Reason.INVALID, "The request body must be a JSON object.")
        params.update(decoded)
    elif "x-www-form-urlencoded" in content_type:
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    return params


async def read_json(request: Request) -> Json:
    body = await request.body()
    if not body:
        return {}
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        raise Rejection(Reason.INVALID, "The request body is not valid JSON.") from exc
    if not isinstance(decoded, dict):
        raise Rejection(Reason.INVALID, "The request body must be a JSON object.")
    return decoded


def as_str(value: Any) -> str:
    return "" if value is None else str(value)


class Platform:
    name: ClassVar[str]

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    # subclasses

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def render(self, rejection: Rejection) -> Response:
        raise NotImplementedError

    def token_of(self, request: Request) -> str | None:
        return bearer(request)

    # shared machinery

    def route(self, path: str, handler: Handler, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                response = await handler(request)
            except Rejection as rejection:
                return self.render(rejection)  # a refusal: nothing was done, so no answer is lost
            lost: Fault | None = request.scope.get(_LOST)
            if lost is None or not self.emu.faults.lose(lost):
                return response
            if lost.spec.hold_ms:
                await asyncio.sleep(lost.spec.hold_ms / 1000)
            if lost.spec.status is not None:  # done, then answered as a server error (a gateway's 502)
                response = self.render(Rejection(Reason.SERVER_ERROR, lost.spec.message or "", status=lost.spec.status))
            return DroppedConnection() if lost.spec.drop_connection else response

        return Route(path, endpoint, methods=methods)

    async def gate(
        self, request: Request, op: Op, *, account: Account | None = None, token: str | None = None
    ) -> Account:
        """Latency, token, request window, injected faults and (for publish calls) the publishing quota."""
        emu = self.emu
        emu.requests[self.name] += 1
        if account is None:
            account = emu.authenticate(self.name, token or self.token_of(request))
        await emu.delay(self.name, account.account_id)
        emu.take_request(account)
        self._fault(request, account.account_id, op)
        if op is Op.PUBLISH:
            emu.check_publish_quota(account)
        return account

    async def gate_open(self, request: Request) -> None:
        """For token endpoints, which carry no bearer token: latency and account-independent faults."""
        await self.emu.delay(self.name)
        self.emu.requests[self.name] += 1
        self._fault(request, None, Op.AUTH)

    def _fault(self, request: Request, account_id: str | None, op: Op) -> None:
        fault = self.emu.faults.pick(self.name, account_id, op)
        if fault is None:
            return
        if fault.spec.kind is FaultKind.LOST_RESPONSE:
            request.scope[_LOST] = fault
            return
        raise Rejection(
            _FAULT_REASONS[fault.spec.kind],
            fault.spec.message or "",
            status=fault.spec.status,
            retry_after=fault.spec.retry_after,
        )

    def base_url(self, request: Request) -> str:
        """Absolute URL of this platform's mount, for upload URLs the client must call back."""
        return f"{request.url.scheme}://{request.url.netloc}/{self.name}"

    def processing_s(self) -> float:
        return self.emu.processing_for(self.name).delay_s
