"""Run every service as a local process on local defaults (`make run`), set up the demo workspace
(tools/demo) and print how to try it; Ctrl-C stops them all.

Expects the local stack to be running (`make stack-up`) and its addresses in the environment
(KAFKA_BOOTSTRAP_SERVERS, MONGO_URL), as `make run` arranges.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools.demo.api import SocialpubApi
from tools.demo.workspace import DemoWorkspace, ensure_demo_workspace
from tools.emulator.client import EmulatorClient
from tools.emulator.endpoints import metrics_platforms

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".stack" / "logs"
DEMO_STATE = ROOT / ".stack" / "demo.json"


@dataclass(frozen=True)
class Service:
    module: str
    port: int
    args: tuple[str, ...] = ()
    ready_path: str = "/readyz"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return self.module.rsplit(".", 1)[-1]


EMULATOR = Service("tools.emulator", 8090, ("--port", "8090"), ready_path="/_emulator/health")
APPROVAL = Service("approval", 8001)
METRICS = Service("metrics", 8004)
SERVICES = (
    EMULATOR,
    APPROVAL,
    Service("scheduler", 8002),
    Service("publisher", 8003, ("--platform", "all")),
    METRICS,
)
LOCAL_BOOTSTRAP_TOKEN = "local-bootstrap"  # noqa: S105 - a local-only default, printed for the user


def environment() -> dict[str, str]:
    """Local defaults: the local stack, and every platform pointed at the emulator."""
    env = dict(os.environ)
    env.setdefault("SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS", env.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    env.setdefault("SOCIALPUB_MONGO__URL", env.get("MONGO_URL", "mongodb://localhost:27017/"))
    env.setdefault("APPROVAL_BOOTSTRAP_TOKEN", LOCAL_BOOTSTRAP_TOKEN)
    env.setdefault("PUBLISHER_EMULATOR_URL", EMULATOR.url)
    env.setdefault("METRICS_APPROVAL_URL", APPROVAL.url)
    env.setdefault("METRICS_PLATFORMS", metrics_platforms(EMULATOR.url))
    return env


def _ready(service: Service) -> bool:
    try:
        with urllib.request.urlopen(service.url + service.ready_path, timeout=2) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(env: dict[str, str]) -> dict[Service, subprocess.Popen[bytes]]:
    """Every service as a process, logging to .stack/logs; `wait_until_ready` waits for them."""
    LOGS.mkdir(parents=True, exist_ok=True)
    processes: dict[Service, subprocess.Popen[bytes]] = {}
    for service in SERVICES:
        log = (LOGS / f"{service.name}.log").open("ab")
        processes[service] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", service.module, *service.args],
            env={**env, f"{service.name.upper()}_HTTP__PORT": str(service.port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return processes


def wait_until_ready(processes: dict[Service, subprocess.Popen[bytes]], within: float = 90) -> bool:
    """True once every service answers its readiness check; False (and why, on stderr) otherwise."""
    deadline = time.monotonic() + within
    pending = list(processes)
    while pending and time.monotonic() < deadline:
        for service in list(pending):
            if processes[service].poll() is not None:
                print(f"{service.name} exited; see {LOGS / service.name}.log", file=sys.stderr)
                return False
            if _ready(service):
                pending.remove(service)
        time.sleep(0.3)
    if pending:
        print(f"not ready after {within:g} s: {[s.name for s in pending]}; logs in {LOGS}", file=sys.stderr)
        return False
    return True


def stop(processes: dict[Service, subprocess.Popen[bytes]]) -> None:
    # A second Ctrl-C while the services drain must not leave them orphaned.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for service, process in processes.items():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print(f"{service.name} did not stop in 30 s; killing it", file=sys.stderr)
            process.kill()
    stop_stack_we_started()


def stop_stack_we_started() -> None:
    """Kafka and FerretDB, if `make run` started them (one already running is left up)."""
    started_file = os.environ.get("RUN_LOCAL_STACK_STARTED_FILE")
    started = Path(started_file).read_text().split() if started_file and Path(started_file).exists() else []
    if started:
        stack = Path(__file__).resolve().parents[1] / "deploy" / "local" / "stack.py"
        subprocess.run([sys.executable, str(stack), "stop", *started], check=False)  # noqa: S603 - our script, names it wrote


def is_running() -> bool:
    """Whether the system already runs on the local ports (another `make run`)."""
    return _ready(APPROVAL)


def demo_workspace() -> DemoWorkspace:
    """The demo workspace (created, or reused from the last run); the services must be ready."""

    async def ensure() -> DemoWorkspace:
        async with SocialpubApi(APPROVAL.url, METRICS.url) as api, EmulatorClient(EMULATOR.url) as emulator:
            return await ensure_demo_workspace(api, emulator, LOCAL_BOOTSTRAP_TOKEN, DEMO_STATE)

    return asyncio.run(ensure())


def _print_how_to_try(demo: DemoWorkspace) -> None:
    asset = {
        "caption": "Hello from socialpub",
        "targets": [
            {"target_id": "x", "account_id": demo.accounts["x"], "format": "post"},
            {"target_id": "linkedin", "account_id": demo.accounts["linkedin"], "format": "post"},
        ],
        "schedule": {"publish_now": True},
    }
    auth = '-H "Authorization: Bearer $KEY"'
    send_json = "-H 'Content-Type: application/json' -d"

    def pick(*path: str | int) -> str:  # one value out of a JSON answer, without jq
        keys = "".join(f"[{json.dumps(k)}]" for k in path)
        return f"python3 -c 'import json,sys; print(json.load(sys.stdin){keys})'"

    create = f"curl -s {APPROVAL.url}/v1/assets {auth} {send_json} '{json.dumps(asset)}'"
    board = f"curl -s {APPROVAL.url}/v1/assets/$ASSET/posts {auth}"

    accounts = ", ".join(f"{platform} {account}" for platform, account in demo.accounts.items())
    lines = [
        f"Demo workspace {demo.workspace_id} (admin key saved in {DEMO_STATE}); one account per platform:",
        f"  {accounts}",
        "Try it (the first metrics arrive about 60 s after publishing):",
        f"  KEY={demo.api_key}",
        f"  ASSET=$({create} | {pick('asset_id')})",
        f"  curl -s {APPROVAL.url}/v1/assets/$ASSET/approve {auth} {send_json} '{{}}'",
        f"  {board}",
        f"  POST=$({board} | {pick('posts', 0, 'post_id')})",
        f"  curl -s {METRICS.url}/v1/posts/$POST/metrics {auth}",
        f"  curl -s {EMULATOR.url}/_emulator/posts",
        "A batch of demo content with a live status table: make demo",
    ]
    print("\n".join(lines))


def main() -> int:
    env = environment()
    processes: dict[Service, subprocess.Popen[bytes]] = {}
    # Ctrl-C reaches the whole process group; the services shut down on their own, we wait for them.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        processes = start(env)
        if not wait_until_ready(processes):
            return 1
        demo = demo_workspace()
        print("socialpub is running. Logs:", LOGS)
        for service in SERVICES[1:]:
            print(f"  {service.name:<10} {service.url}  (/healthz /readyz /metrics, API docs at /docs)")
        print(f"  {EMULATOR.name:<10} {EMULATOR.url}  (every platform's API; live posts at /_emulator/posts)")
        _print_how_to_try(demo)
        print("Ctrl-C stops everything.")
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        failed = [s.name for s, p in processes.items() if p.poll() not in (None, 0)]
        if not failed:  # a Ctrl-C that reached the services before us: they stopped cleanly
            print("\nstopping…")
            return 0
        print(f"{', '.join(failed)} exited; stopping the others (logs in {LOGS})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
