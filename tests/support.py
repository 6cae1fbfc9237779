"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx


async def eventually(condition: Callable[[], bool], *, within: float = 30.0, what: str = "condition") -> None:
    """Wait until `condition()` holds; fail naming `what` if it does not within `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """One of our services run as a real process, as `python -m <module>` would run it."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.module = module
        self.port = free_port()
        self.log_path = log_path
        prefix = module.upper()
        full_env = {**os.environ, **env, f"{prefix}_HTTP__PORT": str(self.port)}
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args], env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.module} exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if (await client.get(f"{self.url}/readyz", timeout=2)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.module} not ready within {within}s:\n{self.log_tail()}")

    def terminate(self, within: float = 30.0) -> int:
        """SIGTERM, and the exit code once it has shut down (SIGKILL if it hangs)."""
        try:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.module} ignored SIGTERM for {within}s:\n{self.log_tail()}") from None
        finally:
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
