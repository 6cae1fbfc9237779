"""The emulator as a real process on a real socket, the way the local run and benchmarks use it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tools.emulator.client import EmulatorClient

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.emulator", "--port", str(port), "--processing-ms", "0"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            assert process.poll() is None, "emulator exited early"
            try:
                if httpx.get(f"{base_url}/_emulator/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("emulator did not start")
        yield base_url
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert b"Traceback" not in stderr, stderr.decode()  # deliberate drops are not logged as errors


async def test_real_process_serves_platforms_and_loses_responses(served: str) -> None:
    async with EmulatorClient(served) as emu, httpx.AsyncClient(base_url=emu.platform_url("x"), timeout=0.5) as x:
        user = await emu.create_account("x")
        headers = {"Authorization": f"Bearer {user.access_token}"}
        created = await x.post("/2/tweets", json={"text": "post_id=real1"}, headers=headers)
        assert created.status_code == 201

        await emu.add_fault("lost_response", platform="x", count=1, hold_ms=0, drop_connection=True)
        with pytest.raises(httpx.RemoteProtocolError):
            await x.post("/2/tweets", json={"text": "post_id=real2"}, headers=headers)
        await emu.add_fault("lost_response", platform="x", count=1, hold_ms=1_500)
        with pytest.raises(httpx.ReadTimeout):
            await x.post("/2/tweets", json={"text": "post_id=real3"}, headers=headers)

        texts = [p.text for p in await emu.posts(platform="x")]
        assert texts == ["post_id=real1", "post_id=real2", "post_id=real3"]
        assert (await emu.stats()).duplicates == 0
