"""Telegram Bot API (base replaces https://api.telegram.org): `/bot{token}/{method}`."""

from __future__ import annotations

import json
from collections import Counter

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tools.emulator.errors import Reason, Rejection
from tools.emulator.faults import Op
from tools.emulator.platforms.base import Json, Platform, as_str, json_response, read_params
from tools.emulator.state import Account, Emulator

SEND_METHODS = {"sendMessage", "sendPhoto", "sendVideo", "sendMediaGroup"}


def tg_error(status: int, description: str, **parameters: object) -> Response:
    body: Json = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json_response(body, status)


class Telegram(Platform):
    name = "telegram"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.message_ids: Counter[tuple[str, str]] = Counter()
        emulator.on_reset(self.message_ids.clear)

    def routes(self) -> list[Route]:
        return [self.route("/bot{token}/{method}", self.call, ["GET", "POST"])]

    def token_of(self, request: Request) -> str | None:
        token: str = request.path_params["token"]
        return token

    async def call(self, request: Request) -> Response:
        method = request.path_params["method"]
        params = await read_params(request)
        account = await self.gate(request, Op.PUBLISH if method in SEND_METHODS else Op.READ)
        if method == "getMe":
            return json_response({"ok": True, "result": self.bot(account)})
        if method not in SEND_METHODS:
            raise Rejection(Reason.NOT_FOUND)
        return json_response({"ok": True, "result": self.send(account, method, params)})

    def bot(self, account: Account) -> Json:
        return {
            "id": int(account.account_id),
            "is_bot": True,
            "first_name": account.username.replace("_", " ").title(),
            "username": f"{account.username}_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def send(self, account: Account, method: str, params: Json) -> Json | list[Json]:
        chat_id = as_str(params.get("chat_id"))
        if not chat_id:
            raise Rejection(Reason.INVALID, "Bad Request: chat_id is empty")
        migrated = (account.options.get("migrate") or {}).get(chat_id)
        if migrated is not None:
            raise Rejection(Reason.CHAT_MIGRATED, detail={"migrate_to_chat_id": migrated})
        items: list[Json]
        match method:
            case "sendMessage":
                text = as_str(params.get("text"))
                if not text:
                    raise Rejection(Reason.INVALID, "Bad Request: message text is empty")
                if len(text) > 4096:
                    raise Rejection(Reason.CONTENT_REJECTED, "Bad Request: message is too long")
                items = [{"text": text}]
            case "sendPhoto" | "sendVideo":
                kind = "photo" if method == "sendPhoto" else "video"
                if not params.get(kind):
                    raise Rejection(Reason.INVALID, f"Bad Request: there is no {kind} in the request")
                items = [{"type": kind, "media": as_str(params[kind]), "caption": as_str(params.get("caption"))}]
            case _:
                raw = params.get("media")
                media = json.loads(raw) if isinstance(raw, str) else raw
                if not isinstance(media, list) or not 2 <= len(media) <= 10:
                    raise Rejection(Reason.INVALID, "Bad Request: media must contain 2-10 items")
                items = [
                    {
                        "type": as_str(m.get("type")),
                        "media": as_str(m.get("media")),
                        "caption": as_str(m.get("caption")),
                    }
                    for m in media
                    if isinstance(m, dict)
                ]
        for item in items:
            if len(item.get("caption", "")) > 1024:
                raise Rejection(Reason.CONTENT_REJECTED, "Bad Request: message caption is too long")
        messages = [self.message(account, chat_id, item, method == "sendMediaGroup") for item in items]
        text = next((as_str(i.get("text") or i.get("caption")) for i in items if i.get("text") or i.get("caption")), "")
        first = messages[0]
        name = chat_id[1:] if chat_id.startswith("@") else None
        self.emu.record_post(
            account,
            f"{chat_id}:{first['message_id']}",
            text,
            media_type={"sendMessage": "TEXT", "sendPhoto": "PHOTO", "sendVideo": "VIDEO"}.get(method, "ALBUM"),
            permalink=f"https://t.me/{name}/{first['message_id']}" if name else None,
            extra={"chat_id": chat_id, "message_ids": [m["message_id"] for m in messages]},
        )
        return messages if method == "sendMediaGroup" else first

    def message(self, account: Account, chat_id: str, item: Json, grouped: bool) -> Json:
        self.message_ids[(account.account_id, chat_id)] += 1
        message_id = self.message_ids[(account.account_id, chat_id)]
        chat: Json = (
            {
                "id": -1_001_000_000_000 - message_id % 1000,
                "type": "channel",
                "username": chat_id[1:],
                "title": chat_id[1:],
            }
            if chat_id.startswith("@")
            else {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id, "type": "channel", "title": chat_id}
        )
        message: Json = {
            "message_id": message_id,
            "sender_chat": chat,
            "chat": chat,
            "date": int(self.emu.now()),
        }
        if grouped:
            message["media_group_id"] = f"{account.account_id}{chat_id}".replace("-", "")[-12:]
        if "text" in item:
            message["text"] = item["text"]
        elif item.get("type") == "video":
            message["video"] = {"file_id": f"BAAC{message_id}", "file_unique_id": f"AgAD{message_id}", "duration": 10}
        else:
            message["photo"] = [
                {"file_id": f"AgAC{message_id}", "file_unique_id": f"AQAD{message_id}", "width": 1280, "height": 720}
            ]
        if item.get("caption"):
            message["caption"] = item["caption"]
        return message

    def render(self, rejection: Rejection) -> Response:  # noqa: PLR0911 - one return per error shape
        r, msg = rejection.reason, rejection.message
        match r:
            case Reason.TOKEN_INVALID | Reason.TOKEN_EXPIRED | Reason.TOKEN_REVOKED:
                return tg_error(401, "Unauthorized")
            case Reason.RATE_LIMITED | Reason.QUOTA_REACHED:
                retry_after = rejection.retry_after or 5
                return tg_error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
            case Reason.SERVER_ERROR:
                return tg_error(rejection.status or 500, msg or "Internal Server Error")
            case Reason.SPAM:
                return tg_error(403, msg or "Forbidden: bot was kicked from the channel chat")
            case Reason.CHAT_MIGRATED:
                return tg_error(
                    400,
                    "Bad Request: group chat was upgraded to a supergroup chat",
                    migrate_to_chat_id=rejection.detail["migrate_to_chat_id"],
                )
            case Reason.NOT_FOUND:
                return tg_error(404, "Not Found")
            case Reason.CONTENT_REJECTED:
                return tg_error(400, msg or "Bad Request: wrong file identifier/HTTP URL specified")
            case _:
                return tg_error(400, msg or "Bad Request")
