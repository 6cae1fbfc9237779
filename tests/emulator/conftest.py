"""The emulator in-process: one app per test, reached through httpx.ASGITransport (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tools.emulator import EmulatorConfig, create_app
from tools.emulator.client import AccountInfo, EmulatorClient


@pytest.fixture
def app() -> Starlette:
    return create_app(EmulatorConfig(processing_delay_ms=0, seed=7))


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emu") as client:
        yield client


@pytest.fixture
async def emu(app: Starlette) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient("http://emu", transport=httpx.ASGITransport(app=app)) as client:
        yield client


def auth(account: AccountInfo) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}"}
