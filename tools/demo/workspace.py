"""The demo workspace: one account per platform on the emulator, connected through the approval API.

Kept in `.stack/demo.json` (ids and the local demo key; never platform tokens) so the next
`make run` reuses it: the emulator forgets its accounts when it stops, so they are recreated with
the same platform ids and the approval accounts are reconnected with the fresh tokens.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.demo.api import JSON, ApiError, SocialpubApi, tokens_of
from tools.emulator.client import AccountInfo, EmulatorClient

PLATFORMS = ("instagram", "facebook", "x", "tiktok", "youtube", "linkedin", "threads", "pinterest", "telegram")
# What each platform's publisher needs beyond the platform-side id (`remote_id`) and the username
# (X permalinks name it): a pin goes to a board, a Telegram bot posts to a chat.
PROFILES: dict[str, JSON] = {
    "pinterest": {"board_id": "socialpub-demo"},
    "telegram": {"chat_id": "@socialpub_demo"},
}
# The OAuth scopes a user grants the app when connecting: publishing and reading insights.
GRANTS: dict[str, list[str]] = {
    "instagram": ["instagram_basic", "instagram_content_publish", "instagram_manage_insights"],
    "facebook": ["pages_show_list", "pages_read_engagement", "pages_manage_posts", "read_insights"],
    "x": ["tweet.read", "tweet.write", "users.read", "offline.access"],
    "tiktok": ["user.info.basic", "video.publish", "video.upload", "video.list"],
    "youtube": ["https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube.readonly"],
    "linkedin": ["openid", "profile", "w_member_social"],
    "threads": ["threads_basic", "threads_content_publish", "threads_manage_insights"],
    "pinterest": ["boards:read", "pins:read", "pins:write", "user_accounts:read"],
    "telegram": [],
}


@dataclass(frozen=True)
class DemoWorkspace:
    workspace_id: str
    api_key: str
    accounts: dict[str, str]  # platform -> approval account id
    remote_ids: dict[str, str]  # platform -> the emulator's account id


async def connect_emulator_account(
    api: SocialpubApi, emulator: EmulatorClient, platform: str, **spec: object
) -> tuple[JSON, AccountInfo]:
    """A new account on the emulator (`spec` as in its AccountSpec), connected through the approval API."""
    info = await emulator.create_account(platform, **{"scopes": GRANTS[platform], **spec})
    account = await api.connect_account(
        platform,
        handle=f"@{info.username}",
        remote_id=info.account_id,
        profile={"username": info.username, **PROFILES.get(platform, {})},
        tokens=emulator_tokens(info),
    )
    return account, info


def emulator_tokens(info: AccountInfo) -> JSON:
    return tokens_of(info.access_token, info.refresh_token, info.access_expires_at, info.scopes)


async def ensure_demo_workspace(
    api: SocialpubApi, emulator: EmulatorClient, bootstrap_token: str, state_path: Path
) -> DemoWorkspace:
    """The saved demo workspace if its key still works, else a new one; `api` uses its key afterwards."""
    saved = _load(state_path)
    if saved is not None and await _reusable(api, saved):
        on_emulator = {(a.platform, a.account_id) for a in await emulator.accounts()}
        for platform, account_id in saved.accounts.items():
            if (platform, saved.remote_ids[platform]) not in on_emulator:  # a fresh emulator
                info = await emulator.create_account(
                    platform, account_id=saved.remote_ids[platform], scopes=GRANTS[platform]
                )
                await api.reconnect(account_id, emulator_tokens(info))
        return saved
    api.key = None
    key = await api.bootstrap("Demo agency", bootstrap_token)
    workspace = await api.workspace()
    await api.enable_publishing()
    accounts: dict[str, str] = {}
    remote_ids: dict[str, str] = {}
    for platform in PLATFORMS:
        account, info = await connect_emulator_account(api, emulator, platform)
        accounts[platform] = account["account_id"]
        remote_ids[platform] = info.account_id
    demo = DemoWorkspace(workspace["workspace_id"], key, accounts, remote_ids)
    _save(state_path, demo)
    return demo


def _save(state_path: Path, demo: DemoWorkspace) -> None:
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(asdict(demo), indent=2))
    state_path.chmod(0o600)  # it holds an admin key


def _load(state_path: Path) -> DemoWorkspace | None:
    try:
        data = json.loads(state_path.read_text())
        return DemoWorkspace(
            workspace_id=str(data["workspace_id"]),
            api_key=str(data["api_key"]),
            accounts={str(k): str(v) for k, v in data["accounts"].items()},
            remote_ids={str(k): str(v) for k, v in data["remote_ids"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


async def _reusable(api: SocialpubApi, saved: DemoWorkspace) -> bool:
    """The key still opens the workspace (the stack was not wiped) and every account is still there."""
    api.key = saved.api_key
    try:
        workspace = await api.workspace()
        for account_id in saved.accounts.values():
            await api.account(account_id)
    except ApiError as error:
        if error.status in (401, 404):
            return False
        raise
    return bool(workspace["workspace_id"] == saved.workspace_id and set(saved.accounts) == set(PLATFORMS))
