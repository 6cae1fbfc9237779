"""The publisher as real processes against the real Kafka broker, FerretDB and the emulator as a
real process, for the integration and crash tests."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

from aiokafka.admin import AIOKafkaAdminClient
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared import topics
from shared.credentials import CredentialsSettings, CredentialStore, OAuthTokens, build_cipher
from shared.events import AccountStatus, Platform, PostDue
from shared.kafka import EventBus, ensure_topics
from shared.mongo import build_client
from shared.settings import KafkaSettings, MongoSettings
from tests.support import ServiceProcess, TopicWatcher, free_port, running_bus, until
from tools.emulator.client import AccountInfo, EmulatorClient

WATCHED = (
    topics.POSTS_PUBLISHED,
    topics.POSTS_FAILED,
    topics.POSTS_RETRY_SCHEDULED,
    topics.POSTS_HELD,
    topics.ACCOUNTS_STATUS_CHANGED,
)


class Emulator:
    """`python -m tools.emulator` on a free port."""

    def __init__(self, log_path: Path, *args: str) -> None:
        self.port = free_port()
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.emulator", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = EmulatorClient(self.url)

    async def wait_ready(self) -> None:
        await until(self.client.healthy, within=30, what="the emulator")

    async def close(self) -> None:
        await self.client.aclose()
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # answers still held on purpose keep it draining
            self.process.kill()
            self.process.wait()
        self._log.close()


class Stack:
    def __init__(self, kafka: KafkaSettings, mongo: MongoSettings, tmp: Path, emulator: Emulator) -> None:
        self.run = uuid4().hex[:8]
        self.kafka = kafka.model_copy(update={"topic_prefix": f"pub{self.run}.", "partitions": 2})
        self.mongo = mongo
        self.tmp = tmp
        self.emulator = emulator
        self.key = Fernet.generate_key().decode()
        self.credentials = CredentialsSettings(database=f"test_pubcreds_{self.run}", keys=[SecretStr(self.key)])
        self.database = f"test_pub_{self.run}"
        self.mongo_client = build_client(mongo)
        self.store = CredentialStore.in_database(
            self.mongo_client[self.credentials.database], build_cipher(self.credentials)
        )
        self.processes: list[ServiceProcess] = []
        self.bus: EventBus | None = None
        self.watch = TopicWatcher(self.kafka.bootstrap_servers, self.kafka.topic_prefix, WATCHED)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "SOCIALPUB_KAFKA__TOPIC_PREFIX": self.kafka.topic_prefix,
            "SOCIALPUB_KAFKA__PARTITIONS": "2",
            "SOCIALPUB_MONGO__URL": self.mongo.url.get_secret_value(),
            "SOCIALPUB_LOG__LEVEL": "INFO",
            "PUBLISHER_MONGO__DATABASE": self.database,
            "PUBLISHER_CREDENTIALS__DATABASE": self.credentials.database,
            "PUBLISHER_CREDENTIALS__KEYS": json.dumps([self.key]),
            "PUBLISHER_EMULATOR_URL": self.emulator.url,
            "PUBLISHER_LEASE_SECONDS": "4",
            "PUBLISHER_PROCESSING_POLL_SECONDS": "0.1",
            "PUBLISHER_RETRY_BASE_SECONDS": "1",
            "PUBLISHER_SESSION_TIMEOUT_MS": "6000",
            **extra,
        }

    async def start_publisher(self, platform: str = "all", **env: str) -> ServiceProcess:
        name = f"publisher-{len(self.processes)}.log"
        process = ServiceProcess("publisher", self.env(**env), self.tmp / name, "--platform", platform)
        self.processes.append(process)
        await process.wait_ready()
        return process

    async def connect(
        self, platform: Platform, *, scopes: Sequence[str] = (), **profile: Any
    ) -> tuple[str, AccountInfo]:
        """An account as approval would connect it: emulator identity, tokens and granted scopes in
        the shared store."""
        info = await self.emulator.client.create_account(platform.value)
        account_id = f"acct-{uuid4().hex[:10]}"
        await self.save(account_id, platform, info, profile=profile, scopes=scopes)
        return account_id, info

    async def save(
        self,
        account_id: str,
        platform: Platform,
        info: AccountInfo,
        *,
        profile: dict[str, Any] | None = None,
        scopes: Sequence[str] = (),
    ) -> None:
        refresh = SecretStr(info.refresh_token) if info.refresh_token else None
        await self.store.save(
            account_id=account_id,
            workspace_id="ws",
            platform=platform.value,
            tokens=OAuthTokens(access_token=SecretStr(info.access_token), refresh_token=refresh, scopes=list(scopes)),
            status=AccountStatus.ACTIVE,
            external_id=info.account_id,
            profile=profile,
        )

    async def send(self, job: PostDue) -> None:
        assert self.bus is not None
        await self.bus.publish(topics.posts_due(job.platform), job, key=job.account_id)

    async def live_posts(self, platform: Platform, info: AccountInfo) -> int:
        return len(await self.emulator.client.posts(platform.value, info.account_id))


async def drop_topics(settings: KafkaSettings) -> None:
    """Delete this run's topics: the shared broker runs out of file handles with thousands of them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


@asynccontextmanager
async def running_stack(kafka: KafkaSettings, mongo: MongoSettings, tmp: Path) -> AsyncIterator[Stack]:
    emulator = Emulator(tmp / "emulator.log", "--processing-ms", "200", "--no-realistic-limits", "--seed", "5")
    stack = Stack(kafka, mongo, tmp, emulator)
    try:
        await emulator.wait_ready()
        await ensure_topics(stack.kafka, topics.all_topics())
        async with running_bus(stack.kafka) as bus:
            stack.bus = bus
            await stack.watch.start()
            try:
                yield stack
            finally:
                await stack.watch.stop()
    finally:
        for process in stack.processes:
            if process.process.poll() is None:
                process.terminate()
        await emulator.close()
        with contextlib.suppress(Exception):
            await drop_topics(stack.kafka)
        await stack.mongo_client.drop_database(stack.database)
        await stack.mongo_client.drop_database(stack.credentials.database)
        await stack.mongo_client.close()
