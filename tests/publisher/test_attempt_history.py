"""A post's attempt history end to end: the publisher and approval as real processes on the real
Kafka broker and FerretDB, the emulator failing the first two attempts. The history is read
through approval's HTTP API and its CLI, as an operator would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest
import pytest_asyncio
from typer.testing import CliRunner

from approval.cli import app as cli
from shared.events import Platform, PostPublished, PostRetryScheduled
from shared.settings import KafkaSettings, MongoSettings
from tests.publisher.harness import Stack, running_stack
from tests.publisher.support import due
from tests.support import ServiceProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

BOOTSTRAP = "bootstrap-secret-for-history-tests"
OVER_CAPACITY = "Over capacity; the request carried access_token=EAAechoedsecret42"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    kafka_settings: KafkaSettings, mongo_settings: MongoSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Stack, ServiceProcess]]:
    tmp = tmp_path_factory.mktemp("history")
    async with running_stack(kafka_settings, mongo_settings, tmp) as stack:
        publisher = await stack.start_publisher("x")
        # Approval shares the topics and the credentials store (database and key) with the publisher.
        env = {
            **stack.env(),
            "APPROVAL_MONGO__DATABASE": f"test_approval_{stack.run}",
            "SOCIALPUB_CREDENTIALS__DATABASE": stack.credentials.database,
            "SOCIALPUB_CREDENTIALS__KEYS": json.dumps([stack.key]),
            "APPROVAL_BOOTSTRAP_TOKEN": BOOTSTRAP,
        }
        approval = ServiceProcess("approval", env, tmp / "approval.log")
        try:
            await approval.wait_ready()
            yield stack, approval
        finally:
            assert approval.terminate() == 0, approval.log_tail()
            assert publisher.terminate() == 0, publisher.log_tail()
            await stack.mongo_client.drop_database(f"test_approval_{stack.run}")


async def workspace(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    r = await http.post("/v1/workspaces", json={"name": "Agency"}, headers={"X-Bootstrap-Token": BOOTSTRAP})
    assert r.status_code == 201, r.text
    body = r.json()
    return body["workspace"]["workspace_id"], {"Authorization": f"Bearer {body['api_key']}"}


async def test_two_retryable_failures_then_published_list_three_attempts_with_their_errors(
    stack: tuple[Stack, ServiceProcess],
) -> None:
    pub, approval = stack
    info = await pub.emulator.client.create_account("x")
    async with httpx.AsyncClient(base_url=approval.url, timeout=10) as http:
        workspace_id, admin = await workspace(http)
        tokens = {"access_token": info.access_token, "refresh_token": info.refresh_token, "scopes": ["tweet.write"]}
        connect = {"platform": "x", "handle": f"@{info.username}", "remote_id": info.account_id, "tokens": tokens}
        r = await http.post("/v1/accounts", json=connect, headers=admin)
        assert r.status_code == 201, r.text
        account_id = r.json()["account_id"]

        await pub.emulator.client.add_fault(
            "server_error", platform="x", account_id=info.account_id, count=2, message=OVER_CAPACITY
        )
        post_id = f"hist-{uuid4().hex}"
        for attempt in (1, 2, 3):  # the scheduler's part: each retry is the next attempt
            job = due(Platform.X, caption="third time lucky", account_id=account_id, post_id=post_id, attempt=attempt)
            await pub.send(job.model_copy(update={"workspace_id": workspace_id}))
            if attempt < 3:
                await pub.watch.wait_for(PostRetryScheduled, post_id=post_id, attempt=attempt, within=60)
        await pub.watch.wait_for(PostPublished, post_id=post_id, within=60)

        async def all_three_recorded() -> bool:
            r = await http.get(f"/v1/posts/{post_id}/attempts", headers=admin)
            return r.status_code == 200 and len(r.json()["attempts"]) == 3

        await until(all_three_recorded, within=30, what="three attempts in approval's history")
        r = await http.get(f"/v1/posts/{post_id}/attempts", headers=admin)
        attempts = r.json()["attempts"]
        assert [(a["attempt"], a["outcome"], a["error_code"]) for a in attempts] == [
            (1, "retry_scheduled", "network_error"),
            (2, "retry_scheduled", "network_error"),
            (3, "published", None),
        ]
        for failed in attempts[:2]:
            assert failed["message"].startswith("Over capacity")  # the platform's own words
            assert failed["platform_error"]["status"] == 503
        assert attempts[2]["remote_id"]
        assert "EAAechoedsecret42" not in r.text
        assert info.access_token not in r.text

        _, stranger = await workspace(http)
        assert (await http.get(f"/v1/posts/{post_id}/attempts", headers=stranger)).status_code == 404

    key = admin["Authorization"].removeprefix("Bearer ")
    shown = CliRunner().invoke(cli, ["attempts", post_id, "--url", approval.url, "--key", key, "--raw"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("retry_scheduled") == 2
    assert "published" in shown.output
    assert "Over capacity" in shown.output
    assert "EAAechoedsecret42" not in shown.output
