"""Run every service as a local process on local defaults (`make run`); Ctrl-C stops them all.

Expects the local stack to be running (`make stack-up`) and its addresses in the environment
(KAFKA_BOOTSTRAP_SERVERS, MONGO_URL), as `make run` arranges.
"""

from __future__ import annotations

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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES = (
    Service("approval", 8001),
    Service("scheduler", 8002),
    Service("publisher", 8003),
    Service("metrics", 8004),
)


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS", env.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    env.setdefault("SOCIALPUB_MONGO__URL", env.get("MONGO_URL", "mongodb://localhost:27017/"))
    return env


def _ready(service: Service) -> bool:
    try:
        with urllib.request.urlopen(f"{service.url}/readyz", timeout=2) as response:  # noqa: S310 - local URL
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
            print(f"{service.module} did not stop in 30 s; killing it", file=sys.stderr)
            process.kill()


def main() -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    env = _environment()
    processes: dict[Service, subprocess.Popen[bytes]] = {}
    # Ctrl-C reaches the whole process group; the services shut down on their own, we wait for them.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for service in SERVICES:
            log = (LOGS / f"{service.module}.log").open("ab")
            processes[service] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", service.module, *service.args],
                env={**env, f"{service.module.upper()}_HTTP__PORT": str(service.port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        pending = list(SERVICES)
        while pending and time.monotonic() < deadline:
            for service in list(pending):
                if processes[service].poll() is not None:
                    print(f"{service.module} exited; see {LOGS / service.module}.log", file=sys.stderr)
                    return 1
                if _ready(service):
                    pending.remove(service)
            time.sleep(0.3)
        if pending:
            print(f"not ready after 90 s: {[s.module for s in pending]}; logs in {LOGS}", file=sys.stderr)
            return 1
        print("socialpub is running. Logs:", LOGS)
        for service in SERVICES:
            print(f"  {service.module:<10} {service.url}  (/healthz /readyz /metrics, API docs at /docs)")
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
