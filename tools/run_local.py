"""Run every service as a local process on local defaults (`make run`); Ctrl-C stops them all.

Expects the local stack to be running (`make stack-up`) and its addresses in the environment
(KAFKA_BOOTSTRAP_SERVERS, MONGO_URL), as `make run` arranges.
"""

from __future__ import annotations

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

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".stack" / "logs"


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
SERVICES = (
    EMULATOR,
    APPROVAL,
    Service("scheduler", 8002),
    Service("publisher", 8003, ("--platform", "all")),
    Service("metrics", 8004),
)
# The emulator's paths for each platform's OAuth token endpoint, where it is not under the base URL.
_TOKEN_PATHS = {"youtube": "/youtube/token", "linkedin": "/linkedin/oauth/v2/accessToken"}
_INSIGHT_PLATFORMS = ("instagram", "facebook", "threads", "x", "tiktok", "youtube", "linkedin", "pinterest")
LOCAL_BOOTSTRAP_TOKEN = "local-bootstrap"  # noqa: S105 - a local-only default, printed for the user


def _environment() -> dict[str, str]:
    """Local defaults: the local stack, and every platform pointed at the emulator."""
    env = dict(os.environ)
    env.setdefault("SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS", env.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    env.setdefault("SOCIALPUB_MONGO__URL", env.get("MONGO_URL", "mongodb://localhost:27017/"))
    env.setdefault("APPROVAL_BOOTSTRAP_TOKEN", LOCAL_BOOTSTRAP_TOKEN)
    env.setdefault("PUBLISHER_EMULATOR_URL", EMULATOR.url)
    env.setdefault("METRICS_APPROVAL_URL", APPROVAL.url)
    platforms = {
        p: {"base_url": f"{EMULATOR.url}/{p}"}
        | ({"token_url": EMULATOR.url + _TOKEN_PATHS[p]} if p in _TOKEN_PATHS else {})
        for p in _INSIGHT_PLATFORMS
    }
    env.setdefault("METRICS_PLATFORMS", json.dumps(platforms))
    return env


def _ready(service: Service) -> bool:
    try:
        with urllib.request.urlopen(service.url + service.ready_path, timeout=2) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(processes: dict[Service, subprocess.Popen[bytes]]) -> None:
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


def main() -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    env = _environment()
    processes: dict[Service, subprocess.Popen[bytes]] = {}
    # Ctrl-C reaches the whole process group; the services shut down on their own, we wait for them.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for service in SERVICES:
            log = (LOGS / f"{service.name}.log").open("ab")
            processes[service] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", service.module, *service.args],
                env={**env, f"{service.name.upper()}_HTTP__PORT": str(service.port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        pending = list(SERVICES)
        while pending and time.monotonic() < deadline:
            for service in list(pending):
                if processes[service].poll() is not None:
                    print(f"{service.name} exited; see {LOGS / service.name}.log", file=sys.stderr)
                    return 1
                if _ready(service):
                    pending.remove(service)
            time.sleep(0.3)
        if pending:
            print(f"not ready after 90 s: {[s.name for s in pending]}; logs in {LOGS}", file=sys.stderr)
            return 1
        print("socialpub is running. Logs:", LOGS)
        for service in SERVICES[1:]:
            print(f"  {service.name:<10} {service.url}  (/healthz /readyz /metrics, API docs at /docs)")
        print(f"  {EMULATOR.name:<10} {EMULATOR.url}  (every platform's API; live posts at /_emulator/posts)")
        print(
            "Create a workspace and its admin key:\n"
            f"  curl -s -X POST {APPROVAL.url}/v1/workspaces -H 'X-Bootstrap-Token: {LOCAL_BOOTSTRAP_TOKEN}' "
            "-H 'Content-Type: application/json' -d '{\"name\": \"Demo agency\"}'\n"
            "then follow docs/approval.md (connect an account, create an asset, approve it)."
        )
        print("Ctrl-C stops everything.")
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        print("a service exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    finally:
        _stop(processes)


if __name__ == "__main__":
    sys.exit(main())
