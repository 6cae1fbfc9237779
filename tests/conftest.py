"""Fixtures for the real local stack. Integration tests need the Kafka broker and the
MongoDB-compatible server that `make test` starts (deploy/local/stack.py); they fail, never
skip, when those are not there."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document, build_client
from shared.settings import KafkaSettings, MongoSettings
from shared.topics import all_topics


@pytest.fixture(scope="session")
def kafka_settings() -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
        partitions=2,
        request_timeout_ms=15_000,
    )


@pytest.fixture(scope="session")
def mongo_settings() -> MongoSettings:
    return MongoSettings(
        url=SecretStr(os.environ.get("MONGO_URL", "mongodb://localhost:27017/")), server_selection_timeout_ms=5000
    )


@pytest.fixture
def unique() -> str:
    """A short random suffix so tests never share a topic, group or database."""
    return uuid4().hex[:10]


@pytest.fixture
async def mongo(mongo_settings: MongoSettings) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = build_client(mongo_settings)
    yield client
    await client.close()


@pytest.fixture
async def db(mongo: AsyncMongoClient[Document], unique: str) -> AsyncIterator[AsyncDatabase[Document]]:
    name = f"test_{unique}"
    yield mongo[name]
    await mongo.drop_database(name)


def _is_test_topic(name: str) -> bool:
    """Topics tests create: a prefix before a contract name. Contract and internal topics stay."""
    return (
        not name.startswith(("_", "bench"))  # benchmarks delete their own
        and name not in set(all_topics())
        and any(name.endswith(contract) for contract in all_topics())
    )


async def _delete_test_topics(settings: KafkaSettings) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if _is_test_topic(t)]
        for start in range(0, len(doomed), 200):
            await admin.delete_topics(doomed[start : start + 200])
        return len(doomed)
    finally:
        await admin.close()


@pytest.fixture(scope="session", autouse=True)
def _clean_test_topics(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every isolated test creates its own prefixed copy of the topics. Kafka keeps files open
    per partition, so delete them before and after the session or a few runs exhaust the
    broker's file limit. Only runs when the session includes integration tests, and only when no
    other test session is running against the same broker (each holds a shared lock on a file;
    deleting needs the exclusive one), so parallel sessions never lose each other's topics."""
    if not any(item.get_closest_marker("integration") for item in request.session.items):
        yield
        return
    settings = request.getfixturevalue("kafka_settings")
    lock_path = Path(os.environ.get("SOCIALPUB_TEST_LOCK", Path(__file__).parents[1] / ".stack" / "test-session.lock"))
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        _clean_if_alone(lock.fileno(), settings)
        fcntl.flock(lock.fileno(), fcntl.LOCK_SH)
        yield
        _clean_if_alone(lock.fileno(), settings)


def _clean_if_alone(fd: int, settings: KafkaSettings) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another session is running: its topics stay
    asyncio.run(_delete_test_topics(settings))
