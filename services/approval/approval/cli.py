"""Operator command line over the approval HTTP API: `socialpub-approval-cli --help`.

Reads the API URL and key from APPROVAL_URL (default http://127.0.0.1:8001) and APPROVAL_API_KEY.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Operate the approval board: approve, reject, schedule, calendar, post status and attempts.")
console = Console()

Url = Annotated[str, typer.Option(envvar="APPROVAL_URL", help="Base URL of the approval service")]
Key = Annotated[str, typer.Option(envvar="APPROVAL_API_KEY", help="API key (sp_<id>_<secret>)")]
DEFAULT_URL = "http://127.0.0.1:8001"


def _request(url: str, key: str | None, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers |= kwargs.pop("headers", {})
    try:
        response = httpx.request(method, url.rstrip("/") + path, headers=headers, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {url}: {exc}[/red]")
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        error = response.json().get("error", {}) if response.content else {}
        console.print(
            f"[red]{response.status_code} {error.get('code', '')}: {error.get('message', response.text)}[/red]"
        )
        for violation in error.get("violations", []):
            console.print(f"  - [{violation.get('target_id') or '-'}] {violation['rule']}: {violation['message']}")
        raise typer.Exit(1)
    return response.json()


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def _short(when: str | None) -> str:
    return datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M %Z") if when else ""


@app.command()
def bootstrap(
    name: str,
    token: Annotated[str, typer.Option(envvar="APPROVAL_BOOTSTRAP_TOKEN", help="The service's bootstrap token")],
    timezone: str = "UTC",
    url: Url = DEFAULT_URL,
) -> None:
    """Create a workspace and print its first admin API key (shown once)."""
    body = _request(
        url,
        None,
        "POST",
        "/v1/workspaces",
        json={"name": name, "timezone": timezone},
        headers={"X-Bootstrap-Token": token},
    )
    console.print(f"workspace {body['workspace']['workspace_id']} created")
    console.print(f"admin API key (store it now): {body['api_key']}")


@app.command()
def board(
    key: Key,
    state: Annotated[str | None, typer.Option(help="pending_approval, approved, ...")] = "pending_approval",
    campaign: str | None = None,
    limit: int = 50,
    url: Url = DEFAULT_URL,
) -> None:
    """The approval board."""
    params = {k: v for k, v in {"state": state, "campaign": campaign, "limit": limit}.items() if v}
    items = _request(url, key, "GET", "/v1/assets", params=params)["items"]
    rows = [
        [
            a["asset_id"],
            a["version"],
            a["state"],
            a["aggregate_status"],
            a["campaign"],
            ", ".join(f"{t['target_id']}:{t['format']}" for t in a["targets"]),
            (a["caption"][:40] + "...") if len(a["caption"]) > 40 else a["caption"],
        ]
        for a in items
    ]
    _table("Board", ["asset", "v", "state", "posts", "campaign", "targets", "caption"], rows)


@app.command()
def approve(
    asset_ids: list[str],
    key: Key,
    deselect: Annotated[list[str] | None, typer.Option(help="Target ids not to publish")] = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Approve one asset (optionally deselecting targets) or several at once."""
    if len(asset_ids) == 1:
        body = _request(
            url, key, "POST", f"/v1/assets/{asset_ids[0]}/approve", json={"deselect_targets": deselect or []}
        )
        console.print(f"{body['asset_id']}: {body['state']}")
        return
    _bulk(_request(url, key, "POST", "/v1/assets/bulk/approve", json={"asset_ids": asset_ids}))


@app.command()
def reject(
    asset_ids: list[str],
    key: Key,
    reason: Annotated[str, typer.Option(help="Why; shown to the content's authors")],
    discard: bool = False,
    url: Url = DEFAULT_URL,
) -> None:
    """Reject (or discard) one or several assets."""
    body = {"asset_ids": asset_ids, "reason": reason, "discard": discard}
    _bulk(_request(url, key, "POST", "/v1/assets/bulk/reject", json=body))


@app.command()
def regenerate(asset_id: str, key: Key, feedback: Annotated[str, typer.Option()], url: Url = DEFAULT_URL) -> None:
    """Send an asset back to its generator with feedback."""
    body = _request(url, key, "POST", f"/v1/assets/{asset_id}/regenerate", json={"feedback": feedback})
    console.print(f"{body['asset_id']}: {body['state']}")


def _bulk(body: dict[str, Any]) -> None:
    rows = [[a, "ok", ""] for a in body["succeeded"]] + [
        [f["asset_id"], f["code"], f["message"]] for f in body["failed"]
    ]
    _table("Result", ["asset", "result", "reason"], rows)


@app.command()
def schedule(  # noqa: PLR0917 - typer maps parameters to CLI arguments
    post_id: str,
    key: Key,
    at: Annotated[str | None, typer.Option(help="Local wall time, e.g. 2026-12-01T09:00")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone for --at; default the account's")] = None,
    now: Annotated[bool, typer.Option("--now", help="Publish now")] = False,
    url: Url = DEFAULT_URL,
) -> None:
    """Reschedule a post, or publish it now."""
    if now:
        body = _request(url, key, "POST", f"/v1/posts/{post_id}/publish-now")
    elif at:
        sched = {"local_time": at, "timezone": timezone} if timezone else {"local_time": at}
        body = _request(url, key, "POST", f"/v1/posts/{post_id}/reschedule", json={"schedule": sched})
    else:
        console.print("[red]give --at or --now[/red]")
        raise typer.Exit(2)
    console.print(f"{body['command']} sent for {post_id} ({body['command_event_id']})")


@app.command()
def cancel(post_id: str, key: Key, reason: str | None = None, url: Url = DEFAULT_URL) -> None:
    """Cancel a post that has not been published."""
    body = _request(url, key, "POST", f"/v1/posts/{post_id}/cancel", json={"reason": reason})
    console.print(f"{body['command']} sent for {post_id}")


@app.command()
def retry(post_id: str, key: Key, url: Url = DEFAULT_URL) -> None:
    """Retry a failed, missed or unconfirmed post (a person's decision)."""
    body = _request(url, key, "POST", f"/v1/posts/{post_id}/retry")
    console.print(f"{body['command']} sent for {post_id}")


@app.command()
def posts(
    key: Key,
    asset: str | None = None,
    status: Annotated[list[str] | None, typer.Option()] = None,
    limit: int = 50,
    url: Url = DEFAULT_URL,
) -> None:
    """Post status: scheduled, retrying, held and why, published with link, failed with the platform's words."""
    params: dict[str, Any] = {"limit": limit}
    if asset:
        params["asset_id"] = asset
    if status:
        params["status"] = status
    items = _request(url, key, "GET", "/v1/posts", params=params)["items"]
    rows = [
        [
            p["post_id"],
            p["platform"],
            p["account_id"],
            p["status"],
            _short(p["due_at"]),
            p["attempt"],
            p["permalink"] or p["held_reason"] or p["error_message"] or _short(p["next_attempt_at"]),
        ]
        for p in items
    ]
    _table("Posts", ["post", "platform", "account", "status", "due (UTC)", "try", "detail"], rows)


@app.command()
def attempts(
    post_id: str,
    key: Key,
    raw: Annotated[bool, typer.Option("--raw", help="Also print each platform's raw error (secrets removed)")] = False,
    url: Url = DEFAULT_URL,
) -> None:
    """Every publish attempt of a post: when, the outcome, the error code and what the platform said."""
    entries = _request(url, key, "GET", f"/v1/posts/{post_id}/attempts")["attempts"]
    rows = [
        [
            a["attempt"],
            _short(a["at"]),
            a["outcome"],
            a["error_code"],
            a["message"] or a["permalink"] or "",
            _short(a["next_attempt_at"]),
        ]
        for a in entries
    ]
    _table(f"Attempts of {post_id}", ["try", "when (UTC)", "outcome", "code", "platform says", "next try"], rows)
    if raw:
        for a in entries:
            if a["platform_error"]:
                console.print(f"attempt {a['attempt']} ({a['outcome']}): {json.dumps(a['platform_error'])}")


@app.command()
def calendar(  # noqa: PLR0917 - typer maps parameters to CLI arguments
    key: Key,
    start: Annotated[str, typer.Option(help="RFC 3339 with offset, e.g. 2026-12-01T00:00:00Z")],
    end: Annotated[str, typer.Option(help="RFC 3339 with offset")],
    platform: str | None = None,
    account: str | None = None,
    campaign: str | None = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Every post of the workspace in a time range, in the workspace's timezone."""
    params = {
        k: v
        for k, v in {
            "start": start,
            "end": end,
            "platform": platform,
            "account_id": account,
            "campaign": campaign,
            "limit": 200,
        }.items()
        if v
    }
    body = _request(url, key, "GET", "/v1/calendar", params=params)
    rows = [
        [_short(e["local_time"]), e["platform"], e["account_id"], e["format"], e["status"], e["campaign"], e["post_id"]]
        for e in body["entries"]
    ]
    _table(
        f"Calendar ({body['timezone']})", ["when", "platform", "account", "format", "status", "campaign", "post"], rows
    )
    if body.get("slots"):
        slots = [
            [_short(s["at"]), s["account_id"], s["format"], s["brief"], s["asset_id"] or "(gap)"] for s in body["slots"]
        ]
        _table("Planned slots", ["when (UTC)", "account", "format", "brief", "asset"], slots)


@app.command("create-asset")
def create_asset(path: Path, key: Key, url: Url = DEFAULT_URL) -> None:
    """Create an asset from a JSON file (the body of POST /v1/assets)."""
    body = _request(url, key, "POST", "/v1/assets", json=json.loads(path.read_text()))
    console.print(f"{body['asset_id']}: {body['state']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
