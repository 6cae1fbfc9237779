"""The whole system as `make run` runs it, once per test module: the emulator and every service as a
real process on the real Kafka broker and FerretDB, isolated by a topic prefix and database names
of its own. Tests talk to it only over HTTP (approval, metrics, the emulator's control API)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from shared.mongo import build_client
from shared.settings import KafkaSettings, MongoSettings
from tests.publisher.harness import Emulator, drop_topics
from tests.support import ServiceProcess
from tools.demo.api import SocialpubApi
from tools.emulator.endpoints import metrics_platforms

BOOTSTRAP = "e2e-bootstrap-token"
SERVICES = ("approval", "scheduler", "publisher", "metrics")


@dataclass
class System:
    emulator: Emulator
    services: dict[str, ServiceProcess]
    api: SocialpubApi  # the test workspace's admin key


def _environment(run: str, kafka: KafkaSettings, mongo: MongoSettings, emulator_url: str) -> dict[str, str]:
    return {
        "SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "SOCIALPUB_KAFKA__TOPIC_PREFIX": f"e2e{run}.",
        "SOCIALPUB_KAFKA__PARTITIONS": "2",
        "SOCIALPUB_MONGO__URL": mongo.url.get_secret_value(),
        "SOCIALPUB_LOG__LEVEL": "INFO",
        "SOCIALPUB_CREDENTIALS__DATABASE": f"test_e2e_credentials_{run}",
        "SOCIALPUB_CREDENTIALS__KEYS": json.dumps([Fernet.generate_key().decode()]),
        **{f"{name.upper()}_MONGO__DATABASE": f"test_e2e_{name}_{run}" for name in SERVICES},
        "APPROVAL_BOOTSTRAP_TOKEN": BOOTSTRAP,
        "PUBLISHER_EMULATOR_URL": emulator_url,
        # Quick failure handling: a dead attempt's lease, status polls and network-error backoff.
        "PUBLISHER_LEASE_SECONDS": "4",
        "PUBLISHER_PROCESSING_POLL_SECONDS": "0.1",
        "PUBLISHER_RETRY_BASE_SECONDS": "1",
        "PUBLISHER_SESSION_TIMEOUT_MS": "6000",
        "SCHEDULER_SESSION_TIMEOUT_MS": "6000",
        "METRICS_SESSION_TIMEOUT_MS": "6000",
        "METRICS_PLATFORMS": metrics_platforms(emulator_url),
        # The first insight pull comes 60 s after publishing in production; 2 s here.
        "METRICS_PULLS__FIRST_AFTER_SECONDS": "2",
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(
    kafka_settings: KafkaSettings, mongo_settings: MongoSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    run = uuid4().hex[:8]
    logs = tmp_path_factory.mktemp("e2e")
    emulator = Emulator(logs / "emulator.log", "--processing-ms", "200", "--seed", "7")
    env = _environment(run, kafka_settings, mongo_settings, emulator.url)
    services: dict[str, ServiceProcess] = {}
    try:
        services["approval"] = ServiceProcess("approval", env, logs / "approval.log")
        for name, args in (("scheduler", ()), ("publisher", ("--platform", "all"))):
            services[name] = ServiceProcess(name, env, logs / f"{name}.log", *args)
        await emulator.wait_ready()
        metrics_env = {**env, "METRICS_APPROVAL_URL": services["approval"].url}
        services["metrics"] = ServiceProcess("metrics", metrics_env, logs / "metrics.log")
        await asyncio.gather(*(s.wait_ready(within=90) for s in services.values()))
        async with SocialpubApi(services["approval"].url, services["metrics"].url) as api:
            await api.bootstrap("E2E agency", BOOTSTRAP)
            await api.enable_publishing()
            yield System(emulator, services, api)
    finally:
        codes = {name: s.terminate() for name, s in services.items() if s.process.poll() is None}
        await emulator.close()
        await _drop_everything(run, env, kafka_settings, mongo_settings)
        _report_logs(logs, codes)


async def _drop_everything(run: str, env: dict[str, str], kafka: KafkaSettings, mongo: MongoSettings) -> None:
    with contextlib.suppress(Exception):
        await drop_topics(kafka.model_copy(update={"topic_prefix": env["SOCIALPUB_KAFKA__TOPIC_PREFIX"]}))
    client = build_client(mongo)
    try:
        for name in (env["SOCIALPUB_CREDENTIALS__DATABASE"], *(f"test_e2e_{s}_{run}" for s in SERVICES)):
            await client.drop_database(name)
    finally:
        await client.close()


def _report_logs(logs: Path, codes: dict[str, int]) -> None:
    """A service that did not stop cleanly fails the module, pointing at its log."""
    unclean = {name: code for name, code in codes.items() if code != 0}
    assert not unclean, f"services exited uncleanly: {unclean}; logs in {logs}"
