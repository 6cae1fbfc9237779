"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer

from shared.events import ALL_EVENTS, Event, decode
from shared.kafka import EventBus, build_broker
from shared.metrics import ServiceMetrics, build_metrics
from shared.settings import KafkaSettings

E = TypeVar("E", bound=Event)


async def eventually(condition: Callable[[], bool], *, within: float = 30.0, what: str = "condition") -> None:
    """Wait until `condition()` holds; fail naming `what` if it does not within `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


async def until(check: Callable[[], Awaitable[bool]], *, within: float = 30.0, what: str = "condition") -> None:
    """Like `eventually`, for a condition that has to be awaited."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """One of our services run as a real process, as `python -m <module>` would run it."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path, *args: str, nice: int = 0) -> None:
        """`nice` lowers the process's CPU priority (as `nice -n` does) on a shared machine."""
        self.module = module
        self.port = free_port()
        self.log_path = log_path
        prefix = module.upper()
        full_env = {**os.environ, **env, f"{prefix}_HTTP__PORT": str(self.port)}
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*(("nice", "-n", str(nice)) if nice else ()), sys.executable, "-m", module, *args],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.module} exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if (await client.get(f"{self.url}/readyz", timeout=2)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.module} not ready within {within}s:\n{self.log_tail()}")

    def terminate(self, within: float = 30.0) -> int:
        """SIGTERM, and the exit code once it has shut down (SIGKILL if it hangs)."""
        try:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.module} ignored SIGTERM for {within}s:\n{self.log_tail()}") from None
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self.process.kill()
        self.process.wait()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        if not self._log.closed:  # closed once the process was stopped
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class Seen:
    topic: str
    event: Event
    key: str
    received_at: float


class TopicWatcher:
    """An independent consumer that records every event on some topics, for assertions."""

    def __init__(self, bootstrap_servers: str, prefix: str, topics: Sequence[str]) -> None:
        self._prefix = prefix
        self._consumer = AIOKafkaConsumer(
            *(prefix + t for t in topics),
            bootstrap_servers=bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            metadata_max_age_ms=1000,
        )
        self.seen: list[Seen] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    self.seen.append(
                        Seen(
                            r.topic.removeprefix(self._prefix), decode(r.value, ALL_EVENTS), r.key.decode(), time.time()
                        )
                    )

    def events(self, kind: type[E], **matching: object) -> list[E]:
        return [
            s.event
            for s in self.seen
            if isinstance(s.event, kind) and all(getattr(s.event, k) == v for k, v in matching.items())
        ]

    def arrivals(self, kind: type[Event], **matching: object) -> list[Seen]:
        return [
            s
            for s in self.seen
            if isinstance(s.event, kind) and all(getattr(s.event, k) == v for k, v in matching.items())
        ]

    async def wait_for(self, kind: type[E], count: int = 1, *, within: float = 30.0, **matching: object) -> list[E]:
        await eventually(
            lambda: len(self.events(kind, **matching)) >= count,
            within=within,
            what=f"{count} x {kind.__name__} {matching}",
        )
        return self.events(kind, **matching)


async def metric_value(url: str, name: str) -> float:
    """The sum of a Prometheus metric's samples at a service's /metrics endpoint."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics", timeout=5)).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def read_all(settings: KafkaSettings, topic: str, count: int) -> list[Any]:
    """The first `count` records of a topic (fewer after about 30 s), read from its start."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        records: list[Any] = []
        for _ in range(100):
            batch = await consumer.getmany(timeout_ms=300)
            records.extend(r for rs in batch.values() for r in rs)
            if len(records) >= count:
                break
        return records
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def running_bus(
    settings: KafkaSettings,
    subscribe: Callable[[EventBus], None] | None = None,
    metrics: ServiceMetrics | None = None,
) -> AsyncIterator[EventBus]:
    """A started EventBus (and its FastStream broker) for a test; `subscribe` registers consumers;
    pass `metrics` to read what the bus counted."""
    metrics = metrics or build_metrics()
    broker = build_broker(settings, service="tests", metrics=metrics)
    bus = EventBus(broker, settings, metrics, client_id="tests")
    if subscribe is not None:
        subscribe(bus)
    await bus.start()
    await broker.start()
    try:
        yield bus
    finally:
        await broker.stop()
        await bus.stop()
