"""Each service starts as a real process, connects to Kafka and MongoDB, serves its health and
metrics endpoints, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shared.settings import KafkaSettings, MongoSettings
from tests.support import ServiceProcess

pytestmark = pytest.mark.integration

SERVICES = ("approval", "scheduler", "publisher", "metrics")


async def test_services_start_report_ready_and_stop_on_sigterm(
    kafka_settings: KafkaSettings, mongo_settings: MongoSettings, unique: str, tmp_path: Path
) -> None:
    env = {
        "SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "SOCIALPUB_MONGO__URL": mongo_settings.url.get_secret_value(),
        "SOCIALPUB_KAFKA__PARTITIONS": "2",
    }
    processes = [
        ServiceProcess(name, {**env, f"{name.upper()}_MONGO__DATABASE": f"test_{name}_{unique}"}, tmp_path / name)
        for name in SERVICES
    ]
    try:
        for process in processes:
            await process.wait_ready()
        async with httpx.AsyncClient() as client:
            for process in processes:
                assert (await client.get(f"{process.url}/healthz")).json() == {"status": "ok"}
                ready = (await client.get(f"{process.url}/readyz")).json()
                assert ready == {"status": "ready", "checks": {"kafka": True, "mongodb": True}}
                metrics = (await client.get(f"{process.url}/metrics")).text
                assert "process_resident_memory_bytes" in metrics
                assert "socialpub_events_consumed" in metrics
    finally:
        codes = {p.module: p.terminate() for p in processes}
    assert codes == dict.fromkeys(SERVICES, 0)
    for process in processes:
        assert "service stopped" in process.log_path.read_text()
