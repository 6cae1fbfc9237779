"""The whole system as local processes, for the load benchmark and the fault suite.

`System` starts the platform emulator and the four services (publisher in its several-platforms
mode) on one topic prefix and fresh databases, creates accounts on every platform in the emulator
with their encrypted credentials, serves the media the publishers download, and feeds content in
through `assets.approved.v1` (the volume entry point). `Tracker` is an independent consumer of the
post topics that records, per post, when it fell due, when PostDue was emitted, when it went live
and how it ended. `Sampler` records CPU and resident memory per process every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psutil
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared import topics
from shared.credentials import CredentialsSettings, CredentialStore, OAuthTokens, build_cipher
from shared.events import AccountStatus, AssetApproved, MediaRef, Platform, PostFormat, Schedule, Target
from shared.ids import post_id_for
from shared.kafka import EventBus, build_broker, ensure_topics
from shared.metrics import build_metrics
from shared.mongo import build_client
from shared.settings import KafkaSettings, MongoSettings
from tests.publisher.harness import Emulator
from tests.support import ServiceProcess, free_port
from tools.emulator.endpoints import INSIGHT_PLATFORMS, metrics_platforms

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"
PARTITIONS = 12
# What each platform gets: a format it offers and the media that format needs.
CONTENT: dict[Platform, tuple[PostFormat, str | None]] = {
    Platform.INSTAGRAM: (PostFormat.POST, "image"),
    Platform.FACEBOOK: (PostFormat.POST, None),
    Platform.X: (PostFormat.POST, None),
    Platform.TIKTOK: (PostFormat.VIDEO, "video"),
    Platform.YOUTUBE: (PostFormat.VIDEO, "video"),
    Platform.LINKEDIN: (PostFormat.POST, None),
    Platform.THREADS: (PostFormat.POST, None),
    Platform.PINTEREST: (PostFormat.POST, "image"),
    Platform.TELEGRAM: (PostFormat.POST, None),
}
TERMINAL = ("published", "failed", "held", "cancelled")
_FINAL_TOPICS = {
    topics.POSTS_PUBLISHED: "published",
    topics.POSTS_FAILED: "failed",
    topics.POSTS_HELD: "held",
    topics.POSTS_CANCELLED: "cancelled",
}
_VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(64 * 1024)  # the publishers upload bytes, nobody decodes them
_JPEG = b"\xff\xd8\xff\xe0" + bytes(16 * 1024)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 3)}


@dataclass
class PostTrack:
    due: float
    due_emitted: float | None = None
    published_at: float | None = None
    outcome: str | None = None
    error_code: str | None = None
    platform: str | None = None
    scheduled_at: float | None = None
    first_metrics_at: float | None = None
    events: Counter[str] = field(default_factory=Counter)


class Tracker:
    """Every event of the post topics, read by a consumer of its own (no group, from the start)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.posts: dict[str, PostTrack] = {}
        # Kept as events arrive, so progress is a set intersection, not a pass over every post.
        self.done: set[str] = set()
        self.live: set[str] = set()
        self.unexpected: Counter[str] = Counter()
        names = [
            topics.POSTS_SCHEDULED,
            *(topics.posts_due(p) for p in Platform),
            *_FINAL_TOPICS,
            topics.POSTS_RETRY_SCHEDULED,
            topics.METRICS_SYNCED,
        ]
        self._prefix = settings.topic_prefix
        self._consumer = AIOKafkaConsumer(
            *(self._prefix + n for n in names),
            bootstrap_servers=settings.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 2**20,
            # Few, large fetches: every figure comes from the events' own times, so reading them
            # half a second later changes none, and each fetch names all 192 partitions in pure
            # Python. The services' low-latency fetches cost this tool 5 % of a core in a burst,
            # taken from the system it measures.
            fetch_min_bytes=2**20,
            fetch_max_wait_ms=500,
        )
        self._task: asyncio.Task[None] | None = None

    def expect(self, post_id: str, due: float) -> None:
        self.posts[post_id] = PostTrack(due)

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
            except Exception:  # noqa: BLE001 - the broker restarts in the fault suite; keep reading
                await asyncio.sleep(1)
                continue
            for tp, records in batch.items():
                name = tp.topic.removeprefix(self._prefix)
                for record in records:
                    self._record(name, json.loads(record.value))

    def _record(self, topic: str, data: dict[str, Any]) -> None:
        post = self.posts.get(data.get("post_id", ""))
        if post is None:
            self.unexpected[topic] += 1
            return
        occurred = datetime.fromisoformat(data["occurred_at"]).timestamp()
        if topic == topics.METRICS_SYNCED:
            if post.first_metrics_at is None:
                post.first_metrics_at = occurred
            return
        post.events[topic] += 1
        if topic == topics.POSTS_SCHEDULED and post.scheduled_at is None:
            post.scheduled_at = occurred
        if topic.startswith("posts.due."):
            if post.due_emitted is None:
                post.due_emitted = occurred
                post.platform = topic.split(".")[2]
            return
        outcome = _FINAL_TOPICS.get(topic)
        if outcome is None:
            return  # a retry: not an outcome yet
        post.outcome = outcome
        post.error_code = data.get("error_code")
        self.done.add(data["post_id"])
        if outcome == "published" and post.published_at is None:
            # When the publisher knew it was live: platforms give published times in whole seconds.
            post.published_at = occurred
            self.live.add(data["post_id"])

    def finished(self, ids: set[str]) -> int:
        return len(ids & self.done)

    def published(self, ids: set[str]) -> int:
        return len(ids & self.live)

    def summary(self, ids: set[str]) -> dict[str, Any]:
        posts = [self.posts[i] for i in ids]
        due_lateness = [max(0.0, p.due_emitted - p.due) for p in posts if p.due_emitted is not None]
        publish_lateness = [max(0.0, p.published_at - p.due) for p in posts if p.published_at is not None]
        early = sum(1 for p in posts if p.due_emitted is not None and p.due_emitted < p.due - 0.001)
        outcomes = Counter(p.outcome or "unfinished" for p in posts)
        errors = Counter(p.error_code for p in posts if p.outcome in ("failed", "held") and p.error_code)
        repeated: Counter[str] = Counter()
        for p in posts:
            for topic, n in p.events.items():
                if n > 1 and not topic.startswith("posts.due."):
                    repeated[topic] += n - 1
        return {
            "posts": len(posts),
            "outcomes": dict(outcomes),
            "unfinished": outcomes.get("unfinished", 0),
            "error_codes": dict(errors),
            "postdue_lateness_s": percentiles(due_lateness),
            "publish_lateness_s": percentiles(publish_lateness),
            "publish_lateness_by_platform_s": {
                platform: percentiles([max(0.0, p.published_at - p.due) for p in group if p.published_at is not None])
                for platform, group in _by_platform(posts).items()
            },
            "due_emitted_early": early,
            "outcome_events_repeated": dict(repeated),
        }

    def metrics_summary(self, ids: set[str]) -> dict[str, Any]:
        """When the first insights arrived: the first pull is due 60 s after publishing."""
        posts = [p for i in ids if (p := self.posts[i]).published_at is not None and p.platform in INSIGHT_PLATFORMS]
        return {
            "published_with_insights": len(posts),  # Telegram has none
            "with_metrics": sum(1 for p in posts if p.first_metrics_at is not None),
            "after_publish_s": percentiles(
                [p.first_metrics_at - p.published_at for p in posts if p.first_metrics_at and p.published_at]
            ),
        }


def _by_platform(posts: list[PostTrack]) -> dict[str, list[PostTrack]]:
    groups: dict[str, list[PostTrack]] = {}
    for post in posts:
        groups.setdefault(post.platform or "unknown", []).append(post)
    return dict(sorted(groups.items()))


class Sampler:
    """CPU (percent of one core) and resident memory of each process, once a second."""

    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self.processes = processes
        self.samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in processes}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(psutil.Error):
                process.cpu_percent()
        while True:
            await asyncio.sleep(1)
            now = time.time()
            for name, process in list(self.processes.items()):
                with contextlib.suppress(psutil.Error):
                    self.samples[name].append((now, process.cpu_percent(), process.memory_info().rss / 2**20))

    def summary(self, since: float, until: float) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name, samples in self.samples.items():
            window = [(c, r) for t, c, r in samples if since <= t <= until]
            if window:
                out[name] = {
                    "cpu_mean_pct": round(sum(c for c, _ in window) / len(window), 1),
                    "cpu_max_pct": round(max(c for c, _ in window), 1),
                    "rss_max_mib": round(max(r for _, r in window)),
                }
        return out


# Every process shares two cores here. Publishing on time is what a late CPU slice costs most;
# the approval board and the insight pulls may lag by seconds and catch up, so when the machine
# is full they yield (what CPU requests and priorities do for an orchestrator's pods).
BACKGROUND_NICE = {"approval": 10, "metrics": 10}


def stack_processes() -> dict[str, psutil.Process]:
    """The local Kafka broker and FerretDB, found by their command lines."""
    found: dict[str, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "kafka.Kafka" in cmdline:
            found["kafka"] = process
        elif "bin/ferretdb" in cmdline:
            found["ferretdb"] = process
    return found


class System:
    def __init__(
        self,
        name: str,
        *,
        publishers: int = 1,
        latency_ms: float = 50,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.run = uuid4().hex[:8]
        self.name = name
        self.logs = logs = RESULTS / f"{name}-{self.run}"
        logs.mkdir(parents=True)
        self.kafka = KafkaSettings(
            bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
            partitions=PARTITIONS,
            topic_prefix=f"bench{self.run}.",
        )
        self.mongo = MongoSettings(url=SecretStr(os.environ.get("MONGO_URL", "mongodb://localhost:27017/")))
        self.publishers = publishers
        self.emulator = Emulator(
            logs / "emulator.log", "--latency-ms", str(latency_ms), "--processing-ms", "0", "--no-realistic-limits"
        )
        self.key = Fernet.generate_key().decode()
        self.databases = [f"bench_{s}_{self.run}" for s in ("approval", "scheduler", "publisher", "metrics", "creds")]
        self.extra_env = extra_env or {}
        self.services: dict[str, ServiceProcess] = {}
        self.accounts: list[tuple[Platform, str]] = []
        self.tracker = Tracker(self.kafka)
        metrics = build_metrics()
        self._broker = build_broker(self.kafka, service="bench", metrics=metrics)
        self.bus = EventBus(self._broker, self.kafka, metrics, client_id="bench")
        self._media: web.AppRunner | None = None
        self.media_url = ""
        self.restarts: Counter[str] = Counter()
        self._restarting: dict[str, asyncio.Lock] = {}

    # ----- processes ---------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        mongo = self.mongo.url.get_secret_value()
        approval = self.services.get("approval")
        return {
            "SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "SOCIALPUB_KAFKA__TOPIC_PREFIX": self.kafka.topic_prefix,
            "SOCIALPUB_KAFKA__PARTITIONS": str(PARTITIONS),
            "SOCIALPUB_MONGO__URL": mongo,
            "SOCIALPUB_LOG__LEVEL": "WARNING",
            "SOCIALPUB_CREDENTIALS__DATABASE": self.databases[4],
            "SOCIALPUB_CREDENTIALS__KEYS": json.dumps([self.key]),
            "APPROVAL_MONGO__DATABASE": self.databases[0],
            "SCHEDULER_MONGO__DATABASE": self.databases[1],
            "PUBLISHER_MONGO__DATABASE": self.databases[2],
            "METRICS_MONGO__DATABASE": self.databases[3],
            "PUBLISHER_EMULATOR_URL": self.emulator.url,
            "METRICS_PLATFORMS": metrics_platforms(self.emulator.url),
            "METRICS_APPROVAL_URL": approval.url if approval else "http://127.0.0.1:9",
            **{f"PUBLISHER_PLATFORMS__{p.name}__PUBLISH_LIMIT": "1000000" for p in Platform},
            **self.extra_env,
        }

    def _spawn(self, name: str) -> ServiceProcess:
        module = name.rstrip("0123456789")
        args = ("--platform", "all") if module == "publisher" else ()
        attempt = self.restarts[name]
        log = self.logs / f"{name}{'' if not attempt else f'.restart{attempt}'}.log"
        return ServiceProcess(module, self.env(), log, *args, nice=BACKGROUND_NICE.get(module, 0))

    def service_names(self) -> list[str]:
        return ["approval", "scheduler", *(f"publisher{i}" for i in range(self.publishers)), "metrics"]

    async def start(self, accounts: int) -> None:
        try:
            await self._serve_media()
            await self.emulator.wait_ready()
            await ensure_topics(self.kafka, topics.all_topics())
            await self._create_accounts(accounts)
            for name in self.service_names():
                self.services[name] = self._spawn(name)
                await self.services[name].wait_ready(within=120)
        except BaseException:
            # What did start must not keep running: left-over services took CPU from the next run.
            self._terminate_services()
            await self.emulator.close()
            raise
        await self.bus.start()
        await self._broker.start()
        await self.tracker.start()

    async def restart(self, name: str, *, kill: bool = True) -> float:
        """SIGKILL (or SIGTERM) one service and start it again; seconds until it was ready.

        One restart of a service at a time; a start that fails (the broker is restarting too) is
        tried again, as an orchestrator would."""
        async with self._restarting.setdefault(name, asyncio.Lock()):
            started = time.monotonic()
            old = self.services[name]
            if kill:
                old.kill()
            else:
                old.terminate()
            self.restarts[name] += 1
            for attempt in range(1, 6):
                self.services[name] = self._spawn(name)
                try:
                    await self.services[name].wait_ready(within=120)
                    break
                except AssertionError:
                    # Not ready is not necessarily dead: a half-started process left running would
                    # be a second instance nobody restarts or stops.
                    self.services[name].kill()
                    if attempt == 5:
                        raise
                    await asyncio.sleep(5)
            return time.monotonic() - started

    def _terminate_services(self) -> None:
        for service in self.services.values():
            if service.process.poll() is None:
                with contextlib.suppress(AssertionError):
                    service.terminate()

    def processes(self) -> dict[str, psutil.Process]:
        ours = {name: psutil.Process(s.process.pid) for name, s in self.services.items()}
        # The benchmark itself too: its tracker reads every post event and takes a share of the cores.
        bench = {"benchmark": psutil.Process()}
        return {**ours, "emulator": psutil.Process(self.emulator.process.pid), **stack_processes(), **bench}

    async def stop(self) -> None:
        await self.tracker.stop()
        await self._broker.stop()
        await self.bus.stop()
        self._terminate_services()
        await self.emulator.close()
        if self._media is not None:
            await self._media.cleanup()
        admin_client = build_client(self.mongo)
        try:
            for database in self.databases:
                await admin_client.drop_database(database)
        finally:
            await admin_client.close()
        from tests.publisher.harness import drop_topics  # noqa: PLC0415 - test helper, only at the end

        await drop_topics(self.kafka)

    # ----- accounts, media and content ----------------------------------------------------------

    async def _serve_media(self) -> None:
        async def video(_: web.Request) -> web.Response:
            return web.Response(body=_VIDEO, content_type="video/mp4")

        async def image(_: web.Request) -> web.Response:
            return web.Response(body=_JPEG, content_type="image/jpeg")

        app = web.Application()
        app.router.add_get("/v.mp4", video)
        app.router.add_get("/i.jpg", image)
        self._media = web.AppRunner(app, access_log=None)
        await self._media.setup()
        port = free_port()
        await web.TCPSite(self._media, "127.0.0.1", port).start()
        self.media_url = f"http://127.0.0.1:{port}"

    async def _create_accounts(self, count: int) -> None:
        platforms = list(Platform)
        specs = [{"platform": platforms[i % len(platforms)].value, "never_expires": True} for i in range(count)]
        infos = []
        for start in range(0, count, 1000):
            infos.extend(await self.emulator.client.create_accounts(specs[start : start + 1000]))
        creds = CredentialsSettings(database=self.databases[4], keys=[SecretStr(self.key)])
        client = build_client(self.mongo)
        try:
            store = CredentialStore.in_database(client[creds.database], build_cipher(creds))
            for n, info in enumerate(infos):
                account_id = f"acct-{n}"
                await store.save(
                    account_id=account_id, workspace_id="bench", platform=info.platform,
                    tokens=OAuthTokens(access_token=SecretStr(info.access_token)), status=AccountStatus.ACTIVE,
                    external_id=info.account_id,
                    profile={"username": info.username, "chat_id": f"@{info.username}", "board_id": "bench-board"},
                )  # fmt: skip
                self.accounts.append((Platform(info.platform), account_id))
        finally:
            await client.close()

    def approval(self, n: int, due: datetime, *, tag: str) -> tuple[AssetApproved, str]:
        """Asset n: one post on account n (round robin), due at `due`."""
        platform, account_id = self.accounts[n % len(self.accounts)]
        post_format, media = CONTENT[platform]
        asset_id = f"{tag}-{n}"
        media_refs = (
            [MediaRef(url=f"{self.media_url}/v.mp4", type="video", mime_type="video/mp4", duration_seconds=10)]
            if media == "video"
            else [MediaRef(url=f"{self.media_url}/i.jpg", type="image", mime_type="image/jpeg")]
            if media == "image"
            else []
        )
        event = AssetApproved(
            producer="bench",
            workspace_id="bench",
            correlation_id=asset_id,
            asset_id=asset_id,
            caption=f"post {tag}-{n} of run {self.run}",
            media=media_refs,
            targets=[Target(target_id="t", platform=platform, account_id=account_id, format=post_format)],
            schedule=Schedule(at_utc=due),
            campaign=tag,
        )
        return event, post_id_for(asset_id, "t")

    async def approve(self, dues: list[datetime], *, tag: str) -> set[str]:
        ids: set[str] = set()
        chunk: list[tuple[str, Any, str]] = []
        for n, due in enumerate(dues):
            event, post_id = self.approval(n, due, tag=tag)
            self.tracker.expect(post_id, due.timestamp())
            ids.add(post_id)
            chunk.append((topics.ASSETS_APPROVED, event, event.asset_id))
            if len(chunk) == 2000:
                await self.bus.publish_many(chunk)
                chunk = []
        if chunk:
            await self.bus.publish_many(chunk)
        return ids


def progress(done: int, total: int, started: float, extra: str = "") -> None:
    width = 30
    filled = int(width * done / max(1, total))
    bar = "#" * filled + "." * (width - filled)
    print(f"\r  [{bar}] {done:>6}/{total} {time.time() - started:6.0f}s {extra}   ", end="", flush=True)


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    box = {"start": time.time()}
    yield box
    box["seconds"] = time.time() - box["start"]
