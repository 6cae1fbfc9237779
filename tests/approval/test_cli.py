"""The operator CLI against the service running as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from approval.cli import app
from tests.approval.conftest import BOOTSTRAP, auth
from tests.support import ServiceProcess

pytestmark = pytest.mark.integration


def test_board_approve_posts_calendar_and_errors(service: ServiceProcess, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--url", service.url]
    result = runner.invoke(app, ["bootstrap", "CLI agency", "--token", BOOTSTRAP, "--timezone", "Europe/Berlin", *base])
    assert result.exit_code == 0, result.output
    key = result.output.split("shown once)" if "shown once)" in result.output else "now): ")[-1].strip()
    assert key.startswith("sp_")
    httpx.patch(f"{service.url}/v1/workspace", json={"publishing_enabled": True}, headers=auth(key), timeout=10)
    account = httpx.post(
        f"{service.url}/v1/accounts",
        json={"platform": "linkedin", "handle": "@co", "tokens": {"access_token": "li-access-token-1"}},
        headers=auth(key),
        timeout=10,
    ).json()
    asset_file = tmp_path / "asset.json"
    asset_file.write_text(
        json.dumps(
            {
                "caption": "Hello",
                "targets": [{"target_id": "li", "account_id": account["account_id"], "format": "post"}],
                "schedule": {"at_utc": "2026-12-01T09:00:00Z"},
                "campaign": "winter",
            }
        )
    )
    keyed = [*base, "--key", key]
    result = runner.invoke(app, ["create-asset", str(asset_file), *keyed])
    assert result.exit_code == 0, result.output
    asset_id = result.output.split(":")[0].strip()
    result = runner.invoke(app, ["board", *keyed])
    assert result.exit_code == 0
    assert asset_id[:12] in result.output
    assert "pending" in result.output
    result = runner.invoke(app, ["approve", asset_id, *keyed])
    assert result.exit_code == 0, result.output
    assert "approved" in result.output, result.output
    result = runner.invoke(app, ["approve", asset_id, *keyed])
    assert result.exit_code == 1
    assert "invalid_transition" in result.output
    result = runner.invoke(app, ["posts", "--asset", asset_id, *keyed])
    assert result.exit_code == 0
    assert "linkedin" in result.output
    assert "pending" in result.output
    result = runner.invoke(
        app, ["calendar", "--start", "2026-11-30T00:00:00Z", "--end", "2026-12-02T00:00:00Z", *keyed]
    )
    assert result.exit_code == 0
    assert "Europe/Berlin" in result.output
    assert "winter" in result.output
    result = runner.invoke(app, ["reject", "missing", "--reason", "no", *keyed])
    assert result.exit_code == 0
    assert "not_found" in result.output
    result = runner.invoke(app, ["board", *base, "--key", "sp_bad_key"])
    assert result.exit_code == 1
    assert "unauthenticated" in result.output
