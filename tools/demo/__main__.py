"""`make demo`: push a batch of demo content through approval to the platforms (the emulator) and
show every post's status live until all of them are done.

    uv run python -m tools.demo [--timeout 240]

Uses the running system (`make run`) or, when the approval service does not answer, starts it as
`make run` does and stops it at the end. Exits non-zero when content was refused or a post did not
reach a final state in time.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from tools import run_local
from tools.demo import content, media
from tools.demo.api import JSON, TERMINAL_POST_STATUSES, ApiError, SocialpubApi
from tools.demo.workspace import DemoWorkspace

# Scheduled pieces count from a moment far enough ahead that creating and approving the batch
# (each media file is measured before approval) is done by then.
LEAD = timedelta(seconds=20)
COLOURS = {"published": "32", "failed": "31", "held": "33", "cancelled": "90", "retrying": "33", "queued": "33"}


def _paint(status: str, text: str, tty: bool) -> str:
    colour = COLOURS.get(status)
    return f"\x1b[{colour}m{text}\x1b[0m" if tty and colour else text


def _table(posts: list[JSON], captions: dict[str, str], handles: dict[str, str], expected: int, tty: bool) -> str:
    counts = Counter(p["status"] for p in posts)
    lines = [f"{'asset':<34} {'platform':<10} {'format':<9} {'account':<18} {'status':<10} permalink / detail"]
    order = {asset_id: n for n, asset_id in enumerate(captions)}  # as the assets were created
    for post in sorted(posts, key=lambda p: (order.get(p["asset_id"], 0), p["platform"])):
        detail = post["permalink"] or post["error_message"] or post["held_reason"] or ""
        if post["status"] == "retrying" and post["next_attempt_at"]:
            detail = f"next attempt {post['next_attempt_at']} ({post['error_code']})"
        elif post["status"] == "scheduled" and post["due_at"]:
            detail = f"due {post['due_at']}"
        status = _paint(post["status"], f"{post['status']:<10}", tty)
        caption = str(captions.get(post["asset_id"], post["asset_id"]))[:34]
        handle = str(handles.get(post["account_id"], post["account_id"]))[:18]
        lines.append(f"{caption:<34} {post['platform']:<10} {post['format'] or '':<9} {handle:<18} {status} {detail}")
    summary = "  ".join(f"{_paint(s, s, tty)} {n}" for s, n in sorted(counts.items()))
    lines.append(f"\n{len(posts)}/{expected} posts on the board   {summary}")
    return "\n".join(lines)


async def _posts(api: SocialpubApi, campaign: str) -> list[JSON]:
    """Every post of this run, from the board (`GET /v1/posts`, paged)."""
    posts: list[JSON] = []
    offset: int | None = 0
    while offset is not None:
        page = await api.posts(campaign=campaign, offset=offset, limit=200)
        posts += page["items"]
        offset = page["next_offset"]
    return posts


async def run_demo(demo: DemoWorkspace, served: media.DemoMedia, within: float) -> int:
    run = uuid4().hex[:6]
    tty = sys.stdout.isatty()
    bodies = content.asset_bodies(demo.accounts, served, datetime.now(UTC) + LEAD, run)
    if not served.has_video:
        print("ffmpeg not found: the video formats are left out of the demo")
    captions: dict[str, str] = {}
    refused: list[str] = []
    expected = 0
    async with SocialpubApi(run_local.APPROVAL.url, run_local.METRICS.url, demo.api_key) as api:
        handles = {a: (await api.account(a))["handle"] for a in demo.accounts.values()}
        print(f"creating and approving {len(bodies)} assets (campaign demo-{run})…")
        for body in bodies:
            try:
                asset = await api.create_asset(body)
                await api.approve(asset["asset_id"])
            except ApiError as error:
                refused.append(f"{body['caption']}: {error}")
                continue
            captions[asset["asset_id"]] = body["caption"]
            expected += len(body["targets"])
        deadline = time.monotonic() + within
        posts: list[JSON] = []
        while time.monotonic() < deadline:
            posts = await _posts(api, f"demo-{run}")
            table = _table(posts, captions, handles, expected, tty)
            print("\x1b[H\x1b[2J" + table if tty else table.splitlines()[-1], flush=True)
            if len(posts) == expected and all(p["status"] in TERMINAL_POST_STATUSES for p in posts):
                break
            await asyncio.sleep(1.0 if tty else 5.0)
    counts = Counter(p["status"] for p in posts)
    unfinished = expected - sum(n for s, n in counts.items() if s in TERMINAL_POST_STATUSES)
    print(f"\n{len(captions)} assets approved, {expected} posts: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for line in refused:
        print(f"refused: {line}", file=sys.stderr)
    if unfinished:
        print(f"{unfinished} posts did not finish within {within:g} s", file=sys.stderr)
    print(f"live posts: {run_local.EMULATOR.url}/_emulator/posts")
    print(f"a post's metrics: {run_local.METRICS.url}/v1/posts/<post_id>/metrics (first values ~60 s after publishing)")
    return 1 if unfinished or refused else 0


def _demo(timeout: float) -> int:
    demo = run_local.demo_workspace()
    with media.serving(run_local.ROOT / ".stack" / "demo-media") as served:
        return asyncio.run(run_demo(demo, served, timeout))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=240, help="seconds for every post to finish")
    args = parser.parse_args()
    if run_local.is_running():
        return _demo(args.timeout)
    print(f"the system is not running: starting it for this demo (logs in {run_local.LOGS})")
    processes: dict[run_local.Service, subprocess.Popen[bytes]] = {}
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        processes = run_local.start(run_local.environment())
        if not run_local.wait_until_ready(processes):
            return 1
        return _demo(args.timeout)
    except KeyboardInterrupt:
        print("\nstopping…")
        return 130
    finally:
        run_local.stop(processes)


if __name__ == "__main__":
    sys.exit(main())
