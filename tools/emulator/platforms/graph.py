"""Meta Graph API conventions shared by Instagram, Threads and Facebook Pages."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tools.emulator.errors import Reason, Rejection
from tools.emulator.platforms.base import Json, bearer, json_response


def graph_token(request: Request, params: Json) -> str | None:
    token = bearer(request)
    return token or (str(params["access_token"]) if params.get("access_token") else None)


def fields_of(params: Json) -> list[str]:
    raw = params.get("fields")
    return [f.strip() for f in str(raw).split(",") if f.strip()] if raw else []


def graph_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    status: int = 400,
    transient: bool = False,
    error_type: str = "OAuthException",
    user_title: str | None = None,
    user_msg: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = transient
    if user_title is not None:
        error["error_user_title"] = user_title
    if user_msg is not None:
        error["error_user_msg"] = user_msg
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    return json_response({"error": error}, status, headers)


def token_error(rejection: Rejection) -> JSONResponse:
    """Graph code 190 with the subcode that says why (463 expired, 460 invalidated, none = unparseable)."""
    if rejection.reason is Reason.TOKEN_EXPIRED:
        expired = rejection.detail.get("expired_at")
        when = graph_time(float(expired)) if expired is not None else "an earlier time"
        return graph_error(190, f"Error validating access token: Session has expired on {when}.", subcode=463)
    if rejection.reason is Reason.TOKEN_REVOKED:
        return graph_error(
            190,
            "Error validating access token: The session has been invalidated because the user changed their "
            "password or Facebook has changed the session for security reasons.",
            subcode=460,
        )
    return graph_error(190, rejection.message or "Invalid OAuth access token - Cannot parse access token")


def not_found(node: str, method: str = "get") -> Rejection:
    return Rejection(
        Reason.NOT_FOUND,
        f"Unsupported {method} request. Object with ID '{node}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation.",
    )


def insights_body(node: str, names: list[str], value_of: Any) -> Json:
    return {
        "data": [
            {
                "name": name,
                "period": "lifetime",
                "values": [{"value": value_of(name)}],
                "title": name.replace("_", " ").title(),
                "description": "",
                "id": f"{node}/insights/{name}/lifetime",
            }
            for name in names
        ]
    }
