"""Kafka entrypoints of the publisher.

`DueConsumer` reads `posts.due.<platform>.v1` in group `publisher.<platform>` with its own
aiokafka loop rather than a batch subscriber, because a batch commits only when its slowest post
is done: one account waiting minutes for video processing would stall every other account.

- Each account has a FIFO queue and at most one worker, so one account's posts go out in order;
  workers run concurrently up to `max_in_flight` accounts, so a slow account holds one slot only,
  and a worker gives its slot back after each post, so accounts with a backlog take turns.
- Offsets are committed per partition up to the oldest record not finished yet, so a crash
  redelivers exactly the unfinished posts (whose ledger claims make the redelivery safe).
- Fetching pauses while `max_pending` records are unfinished.
- Before a fetched batch is queued, its accounts' credentials (unless freshly cached) and rate
  windows (unless in memory) are read in a few `$in` reads (`Publisher.warm`): one read per post
  was most of the publisher's database reads.
- On a rebalance the revoked partitions' running posts finish (or are abandoned after a grace
  period, to be redelivered), their offsets are committed and their rate windows written.

`AccountVerifyRequested` from `accounts.commands.v1` goes through the EventBus (one at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from publisher.adapters.mongo import MongoRateStore
from publisher.handlers import Publisher
from publisher.instruments import PublisherMetrics
from publisher.ports import AttemptStalled, LeaseLost
from shared import topics
from shared.events import AccountVerifyRequested, MalformedEvent, Platform, PostDue, UnknownEventType, decode
from shared.kafka import EventBus
from shared.logging import get_logger, log_context
from shared.settings import KafkaSettings
from shared.tasks import stop_tasks

log = get_logger(__name__)


@dataclass
class ConsumerOptions:
    max_in_flight: int = 512
    max_pending: int = 5000
    fetch_max_records: int = 1000
    commit_interval: float = 1.0
    session_timeout_ms: int = 10_000
    revoke_grace: float = 20.0


@dataclass
class _Partition:
    outstanding: set[int] = field(default_factory=set)
    next_offset: int | None = None  # one past the last fetched record
    committed: int | None = None

    def position(self) -> int | None:
        """Where a restart should resume: the oldest unfinished record, else past the last fetched."""
        return min(self.outstanding) if self.outstanding else self.next_offset


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: each record is queued once
class _Item:
    tp: TopicPartition
    offset: int
    job: PostDue


class DueConsumer(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        *,
        platform: Platform,
        publisher: Publisher,
        bus: EventBus,
        kafka: KafkaSettings,
        rates: MongoRateStore,
        metrics: PublisherMetrics,
        slots: asyncio.Semaphore,
        options: ConsumerOptions,
    ) -> None:
        self.platform = platform
        self.topic = bus.topic(topics.posts_due(platform))
        self.group_id = bus.group(topics.publisher_group(platform))
        self._publisher = publisher
        self._bus = bus
        self._kafka = kafka
        self._rates = rates
        self._metrics = metrics
        self._slots = slots
        self._options = options
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._queues: dict[str, deque[_Item]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._running: set[_Item] = set()  # being published now
        self._accounts_of: dict[TopicPartition, set[str]] = {}
        self._revoked: set[TopicPartition] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.running = False

    # ----- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=self.group_id,
            client_id=f"publisher-{self.platform.value}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._options.session_timeout_ms,
            heartbeat_interval_ms=self._options.session_timeout_ms // 4,
            max_poll_interval_ms=300_000,
            metadata_max_age_ms=5000,
            request_timeout_ms=self._kafka.request_timeout_ms,
            fetch_min_bytes=self._kafka.fetch_min_bytes,
            fetch_max_wait_ms=self._kafka.fetch_max_wait_ms,
        )
        consumer.subscribe([self.topic], listener=self)
        await consumer.start()
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name=f"due-{self.platform.value}")
        self.running = True

    async def stop(self) -> None:
        """Stop fetching, let running posts finish (bounded), commit, leave the group."""
        self._stopping = True
        if self._task is not None:
            await stop_tasks([self._task])
        workers = list(self._workers.values())
        if workers:
            _, running = await asyncio.wait(workers, timeout=self._options.revoke_grace)
            await stop_tasks(running)
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._commit()
            await self._consumer.stop()
        self.running = False

    # ----- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        loop = asyncio.get_running_loop()
        last_commit = loop.time()
        while True:
            try:
                self._throttle(consumer)
                batch = await consumer.getmany(timeout_ms=200, max_records=self._options.fetch_max_records)
                jobs = [(tp, record, await self._decode(record)) for tp, records in batch.items() for record in records]
                # Before any of them starts: one read ahead for the batch's accounts, not one per post.
                accounts = {job.account_id for _, _, job in jobs if job is not None}
                if accounts:
                    await self._publisher.warm(self.platform, accounts)
                for tp, record, job in jobs:
                    self._accept(tp, record.offset, job)
                lost = {(self.platform.value, job.account_id) for tp, _, job in jobs if job and tp in self._revoked}
                if lost:  # revoked while reading ahead: those windows are the new owner's now
                    await self._rates.forget(lost)
                if loop.time() - last_commit >= self._options.commit_interval:
                    await self._commit()
                    last_commit = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("due consumer loop failed; continuing", platform=self.platform.value)
                await asyncio.sleep(1)

    def _pending(self) -> int:
        return sum(len(p.outstanding) for p in self._partitions.values())

    def _throttle(self, consumer: AIOKafkaConsumer) -> None:
        pending = self._pending()
        self._metrics.pending.labels(self.platform.value).set(pending)
        assigned = consumer.assignment()
        if pending >= self._options.max_pending:
            consumer.pause(*assigned)
        elif consumer.paused():
            consumer.resume(*assigned)

    async def _decode(self, record: ConsumerRecord[Any, Any]) -> PostDue | None:
        """The record's post, or None for a record that is not one of ours (dead-lettered if malformed)."""
        try:
            job = decode(record.value or b"", [PostDue])
        except UnknownEventType:
            return None
        except MalformedEvent as exc:
            # The bus owns the dead-letter format and counts it (socialpub_dead_letters_total).
            await self._bus.dead_letter(record, reason=str(exc), group_id=self.group_id)
            return None
        assert isinstance(job, PostDue)
        if job.platform is not self.platform:
            log.warning("post for another platform on this topic; skipped", post_id=job.post_id)
            return None
        return job

    def _accept(self, tp: TopicPartition, offset: int, job: PostDue | None) -> None:
        """Queue the post on its account. Synchronous, so no commit can see the partition's position
        moved past a record that is not outstanding yet (which would skip it)."""
        if tp in self._revoked:
            return  # revoked while the batch was read ahead: the new owner gets it
        state = self._partitions.setdefault(tp, _Partition())
        state.next_offset = offset + 1
        if job is None:
            return
        state.outstanding.add(offset)
        self._accounts_of.setdefault(tp, set()).add(job.account_id)
        self._queues.setdefault(job.account_id, deque()).append(_Item(tp, offset, job))
        if job.account_id not in self._workers:
            self._workers[job.account_id] = asyncio.create_task(self._work(job.account_id))

    async def _work(self, account_id: str) -> None:
        """Publish one account's posts in order; at most `max_in_flight` accounts at once."""
        queue = self._queues[account_id]
        try:
            while queue:
                # One post per turn: the slot goes back after each post, so accounts waiting for
                # one take turns, oldest waiter first. Kept for a whole queue, an account with a
                # backlog published it all while every other account waited (the load benchmark's
                # "lanes": posts of one turn were due up to a backlog apart).
                async with self._slots:
                    if self._stopping:
                        break  # checked with the slot held: a worker that waited for it starts nothing
                    await self._turn(queue)
        finally:
            del self._workers[account_id]
            if queue and not self._stopping:  # arrived after the loop ended
                self._workers[account_id] = asyncio.create_task(self._work(account_id))
            else:
                self._queues.pop(account_id, None)

    async def _turn(self, queue: deque[_Item]) -> None:
        """The head of an account's queue, with a slot held: published and dropped, or dropped
        for the partition's new owner, or left in place when we stop or lose the partition."""
        item = queue[0]
        if item.tp in self._revoked:
            queue.popleft()  # another instance owns it now; it will be redelivered there
            return
        in_flight = self._metrics.in_flight.labels(self.platform.value)
        in_flight.inc()
        self._running.add(item)
        try:
            finished = await self._publish(item)
        finally:
            self._running.discard(item)
            in_flight.dec()
        if finished:
            queue.popleft()
            self._done(item)

    async def _publish(self, item: _Item) -> bool:
        """Until it is done (True): a store or broker outage is waited out, never turned into a lost
        post. False when we stop or lose the partition first: the record is redelivered."""
        delay = 0.5
        job = item.job
        while True:
            with log_context(post_id=job.post_id, correlation_id=job.correlation_id, attempt=job.attempt):
                try:
                    await self._publisher.publish_due(job)
                    return True
                except LeaseLost:
                    log.warning("attempt taken over by another worker; leaving it to them", post_id=job.post_id)
                    return True
                except AttemptStalled:
                    # The traceback says where it hung. Claimed again, it waits out its own lease,
                    # then takes the attempt over and reconciles it.
                    log.exception("attempt stalled and was abandoned; it will be reconciled", post_id=job.post_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("publishing failed; trying the same attempt again", post_id=job.post_id)
            if self._stopping or item.tp in self._revoked:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _done(self, item: _Item) -> None:
        state = self._partitions.get(item.tp)
        if state is not None:
            state.outstanding.discard(item.offset)

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        assert self._consumer is not None
        offsets: dict[TopicPartition, int] = {}
        assigned = self._consumer.assignment()
        for tp, state in self._partitions.items():
            if (only is not None and tp not in only) or tp not in assigned:
                continue
            position = state.position()
            if position is not None and position != state.committed:
                offsets[tp] = position
        if offsets:
            await self._consumer.commit(offsets)
            for tp, position in offsets.items():
                self._partitions[tp].committed = position

    # ----- rebalances --------------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if not revoked:
            return
        self._revoked |= revoked
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.revoke_grace
        # Running posts of these partitions finish; queued ones are left for the new owner.
        while loop.time() < deadline and any(self._running_in(tp) for tp in revoked):  # noqa: ASYNC110 - bounded wait
            await asyncio.sleep(0.05)
        with contextlib.suppress(Exception):
            await self._commit(only=revoked)
        accounts = {(self.platform.value, a) for tp in revoked for a in self._accounts_of.pop(tp, set())}
        with contextlib.suppress(Exception):
            await self._rates.forget(accounts)
        for tp in revoked:
            self._partitions.pop(tp, None)
        log.info("partitions revoked", platform=self.platform.value, partitions=sorted(tp.partition for tp in revoked))

    def _running_in(self, tp: TopicPartition) -> bool:
        return any(item.tp == tp for item in self._running)  # not the workers still waiting for a slot

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._revoked -= assigned
        for tp in assigned:
            self._partitions[tp] = _Partition()
        log.info(
            "partitions assigned", platform=self.platform.value, partitions=sorted(tp.partition for tp in assigned)
        )


def register_account_commands(bus: EventBus, publisher: Publisher, platform: Platform) -> None:
    async def on_command(event: AccountVerifyRequested) -> None:
        if event.platform is platform:
            await publisher.verify_account(event)

    bus.subscribe(
        topics.ACCOUNTS_COMMANDS,
        group_id=f"{topics.publisher_group(platform)}.accounts",
        events=[AccountVerifyRequested],
        handler=on_command,
    )
