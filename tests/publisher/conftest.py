"""The running stack (Kafka topics, FerretDB databases, the emulator) shared by one module's tests;
a module that needs a publisher or more around it defines its own `stack`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shared.settings import KafkaSettings, MongoSettings
from tests.publisher.harness import Stack, running_stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    request: pytest.FixtureRequest,
    kafka_settings: KafkaSettings,
    mongo_settings: MongoSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    async with running_stack(kafka_settings, mongo_settings, tmp) as stack:
        yield stack
