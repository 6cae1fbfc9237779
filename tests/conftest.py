"""Fixtures for the real local stack. Integration tests need the Kafka broker and the
MongoDB-compatible server that `make test` starts (deploy/local/stack.py); they fail, never
skip, when those are not there."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from pydantic import SecretStr
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document, build_client
from shared.settings import KafkaSettings, MongoSettings


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
