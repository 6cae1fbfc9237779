"""Use cases of the scheduler: expand approved assets into posts, keep the posts this replica
owns, hand each to its publisher at its due time, and apply what people and publishers say."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from scheduler import domain
from scheduler.domain import InvalidSchedule, Post, Refusal, State
from scheduler.instruments import SchedulerMetrics
from scheduler.ports import AccountStatuses, Clock, EventSink, PostStore
from scheduler.timetable import Timetable
from shared.events import (
    AccountStatus,
    AccountStatusChanged,
    AssetApproved,
    ErrorCode,
    Event,
    PostCancelled,
    PostCancelRequested,
    PostCommandRejected,
    PostDue,
    PostFailed,
    PostHeld,
    PostPublished,
    PostRescheduleRequested,
    PostRetryRequested,
    PostRetryScheduled,
    PostScheduled,
)
from shared.ids import post_id_for
from shared.kafka import Delivery
from shared.logging import get_logger
from shared.topics import POSTS_CANCELLED, POSTS_COMMAND_REJECTED, POSTS_FAILED, POSTS_SCHEDULED, posts_due

log = get_logger(__name__)

PRODUCER = "scheduler"
_ENVELOPE = frozenset({"event_id", "event_type", "schema_version", "occurred_at", "producer"})
# Namespace of the ids of events the scheduler derives, so a re-emitted event keeps its id.
_EVENT_NAMESPACE = UUID("0d7c0b7e-2b55-4c5e-9b1f-8a9e4c7d3a21")

Outgoing = tuple[str, Event, str]  # topic, event, key


def derived_event_id(post_id: str, kind: str, attempt: int) -> UUID:
    return uuid5(_EVENT_NAMESPACE, f"{post_id}:{kind}:{attempt}")


@dataclass(frozen=True)
class SchedulerConfig:
    misfire_window: timedelta = timedelta(hours=48)
    dispatch_chunk: int = 2000
    compact_after: timedelta = timedelta(minutes=3)
    record_within: timedelta = timedelta(milliseconds=250)


def expand(approved: AssetApproved) -> list[Outgoing]:
    """One PostScheduled per target, with a post_id derived from (asset, target): a redelivered
    AssetApproved yields the same posts. Publish-now is due when the asset was approved."""
    out: list[Outgoing] = []
    for target in approved.targets:
        post_id = post_id_for(approved.asset_id, target.target_id)
        common: dict[str, Any] = {
            "producer": PRODUCER,
            "workspace_id": approved.workspace_id,
            "correlation_id": approved.correlation_id,
            "post_id": post_id,
            "asset_id": approved.asset_id,
            "platform": target.platform,
            "account_id": target.account_id,
        }
        try:
            due = domain.due_at(approved.schedule, account_timezone=target.timezone, now=approved.occurred_at)
        except InvalidSchedule as exc:
            failed = PostFailed.model_validate(
                {
                    **common,
                    "event_id": derived_event_id(post_id, "invalid", approved.version),
                    "error_code": ErrorCode.CONTENT_REJECTED,
                    "error_message": str(exc),
                    "attempts": 0,
                }
            )
            out.append((POSTS_FAILED, failed, post_id))
            continue
        scheduled = PostScheduled.model_validate(
            {
                **common,
                "event_id": derived_event_id(post_id, "scheduled", approved.version),
                "target_id": target.target_id,
                "format": target.format,
                "caption": target.caption if target.caption is not None else approved.caption,
                "media": approved.media,
                "options": target.options,
                "campaign": approved.campaign,
                "due_at": due,
                "timezone": target.timezone,
            }
        )
        out.append((POSTS_SCHEDULED, scheduled, post_id))
    return out


class Scheduler:
    """The posts of the partitions this replica owns, and everything that changes them."""

    def __init__(
        self,
        *,
        store: PostStore,
        accounts: AccountStatuses,
        sink: EventSink,
        clock: Clock,
        config: SchedulerConfig,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self.timetable = Timetable()
        self.wakeup = asyncio.Event()
        self._store = store
        self._accounts = accounts
        self._sink = sink
        self._clock = clock
        self._config = config
        self._metrics = metrics
        # Consumed batches, timer dispatches and rebalances change the timetable one at a time.
        self._lock = asyncio.Lock()
        # Clear from a revocation until the next assignment has loaded its posts. aiokafka hands
        # out records of newly assigned partitions before our assignment callback has finished,
        # and a batch skipped as "not ours" would still have its offsets committed: lost events.
        self._settled = asyncio.Event()
        # Handed over, not yet recorded: written together once the oldest has waited
        # `record_within` (see _dispatch).
        self._unrecorded: list[Post] = []
        self._record_by: float | None = None

    # ----- ownership -------------------------------------------------------------------------

    async def assign(self, partitions: Collection[int]) -> None:
        posts = await self._store.load(partitions)
        async with self._lock:
            self.timetable.assign(partitions, posts)
            released = await self._release_reconnected(self.timetable.held_posts())
        self._settled.set()
        log.info("partitions assigned", partitions=sorted(partitions), posts=len(posts), released=len(released))
        self._observe()
        self.wakeup.set()

    async def revoke(self, partitions: Collection[int]) -> None:
        # Taking the lock waits for an in-flight dispatch, so its record is saved before the
        # next owner loads these partitions: no double dispatch on a clean rebalance.
        self._settled.clear()
        async with self._lock:
            await self.record_before_leaving()
            self.timetable.revoke(partitions)
        log.info("partitions revoked", partitions=sorted(partitions))
        self._observe()

    # ----- consumed events -------------------------------------------------------------------

    async def handle(self, deliveries: Sequence[Delivery[Event]]) -> None:
        if any(d.partition not in self.timetable.partitions for d in deliveries):
            await self._settled.wait()  # a rebalance is under way: apply the batch after it
        async with self._lock:
            now = self._clock.now()
            batch = _Batch(self.timetable)
            # Finished posts are not kept in memory, but a person may still retry a failed one,
            # and a redelivered command must find the post it already changed.
            commanded = {
                d.event.post_id for d in deliveries if isinstance(d.event, _COMMANDS) and d.event.post_id not in batch
            }
            batch.finished = await self._store.get(commanded) if commanded else {}
            for delivery in _creations_first(deliveries):
                if delivery.partition not in self.timetable.partitions:
                    log.warning("event for a partition this replica no longer owns", post_id=delivery.event)
                    continue
                self._apply(batch, delivery, now)
            existing = await self._store.add(list(batch.new.values()))
            for post_id in existing:  # finished posts are not kept in memory; the store knows them
                batch.new.pop(post_id)
            await self._store.save(list(batch.changed.values()))
            for post in [*batch.new.values(), *batch.changed.values()]:
                self._keep(post)
            released = await self._release_reconnected([p for p in batch.changed.values() if p.state is State.HELD])
            await self._sink.emit(batch.out)
        if batch.new or batch.changed or released:
            self._observe()
            self.wakeup.set()

    def _apply(self, batch: _Batch, delivery: Delivery[Event], now: datetime) -> None:
        event = delivery.event
        if isinstance(event, PostScheduled):
            if batch.current(event.post_id) is None:
                batch.new[event.post_id] = _post_from(event, delivery.partition)
            return
        post_id: str = getattr(event, "post_id")  # noqa: B009 - every owner event is keyed by post
        post = batch.current(post_id)
        if isinstance(event, _COMMANDS):
            self._apply_command(batch, event, post, now)
            return
        if post is None:
            return  # a post this scheduler never saw (e.g. failed at expansion): nothing to change
        changed: Post | None = None
        if isinstance(event, PostRetryScheduled):
            changed = domain.retry_scheduled(
                post, failed_attempt=event.attempt, next_attempt=event.next_attempt, next_at=event.next_attempt_at
            )
        elif isinstance(event, PostHeld):
            changed = domain.held(post, attempt=event.attempt, reason=event.reason, at=event.occurred_at)
        elif isinstance(event, PostPublished):
            changed = domain.finished(post, published=True, reason=None)
        elif isinstance(event, PostFailed) and event.producer != PRODUCER:
            changed = domain.finished(post, published=False, reason=f"{event.error_code}: {event.error_message}")
        if changed is not None:
            batch.changed[post_id] = changed

    def _apply_command(
        self,
        batch: _Batch,
        command: PostCancelRequested | PostRescheduleRequested | PostRetryRequested,
        post: Post | None,
        now: datetime,
    ) -> None:
        command_id = str(command.event_id)
        if post is None:
            batch.out.append(_rejection(command, "no such post is scheduled", "unknown"))
            return
        if post.last_command == command_id:  # redelivered: repeat what it did the first time
            batch.out.extend(_command_effects(command, post))
            return
        outcome: Post | Refusal
        if isinstance(command, PostCancelRequested):
            outcome = domain.cancel(post)
        elif isinstance(command, PostRescheduleRequested):
            try:
                new_due = domain.due_at(command.schedule, account_timezone=_str(post.content.get("timezone")), now=now)
            except InvalidSchedule as exc:
                outcome = Refusal(str(exc))
            else:
                outcome = domain.reschedule(post, new_due)
        else:
            outcome = domain.retry_requested(post, now)
        if isinstance(outcome, Refusal):
            batch.out.append(_rejection(command, outcome.reason, post.state.value))
            return
        changed = replace(outcome, last_command=command_id)
        batch.changed[post.post_id] = changed
        batch.out.extend(_command_effects(command, changed))

    async def account_status_changed(self, event: AccountStatusChanged) -> None:
        if event.status is not AccountStatus.ACTIVE:
            await self._accounts.record_inactive(event.account_id, event.occurred_at)
            return
        await self._accounts.record_active(event.account_id, event.occurred_at)
        async with self._lock:
            held = [p for p in self.timetable.held_posts() if p.account_id == event.account_id]
            released = await self._release_reconnected(held)
        if released:
            log.info("held posts released", account_id=event.account_id, posts=len(released))
            self._observe()
            self.wakeup.set()

    async def _release_reconnected(self, held: Sequence[Post]) -> list[Post]:
        """Release held posts whose account became active after they were held. Lock held."""
        if not held:
            return []
        active = await self._accounts.active_since({p.account_id for p in held})
        now = self._clock.now()
        released = [
            r
            for p in held
            if p.account_id in active
            and (r := domain.account_active(p, active_since=active[p.account_id], now=now)) is not None
        ]
        if released:
            await self._store.save(released)
            for post in released:
                self._keep(post)
            await self._sink.emit([_rescheduled(p) for p in released])
        return released

    # ----- the timer -------------------------------------------------------------------------

    def seconds_until_next_due(self) -> float | None:
        """Until the earliest scheduled post is due, or the handed-over ones are to be recorded."""
        wake = min((t for t in (self.timetable.next_due(), self._record_by) if t is not None), default=None)
        return None if wake is None else max(0.0, wake - self._clock.now().timestamp())

    async def dispatch_due(self) -> int:
        """Hand every post that is due to its platform's publisher (or fail it as missed), and
        record what was handed over when its time has come."""
        dispatched = 0
        while True:
            async with self._lock:
                now = self._clock.now()
                due = self.timetable.pop_due(now, self._config.dispatch_chunk)
                if not due:
                    if self._record_by is not None and self._record_by <= now.timestamp():
                        await self.record_dispatched()
                    return dispatched
                try:
                    await self._dispatch(due, now)
                except Exception:
                    for post in due:  # back on the timer: nothing is lost if Kafka or MongoDB blinked
                        self.timetable.put(post)
                    raise
            dispatched += len(due)
            self._observe()

    async def _dispatch(self, due: Sequence[Post], now: datetime) -> None:
        decision = domain.decide_due(due, now, self._config.misfire_window)
        out: list[Outgoing] = [
            (posts_due(_str(p.content["platform"])), _post_due(p), p.account_id) for p in decision.dispatch
        ]
        out += [(POSTS_FAILED, _missed(p), p.post_id) for p in decision.missed]
        # Emit, then record: a crash in between re-emits after restart, which the publisher's
        # attempt ledger makes harmless; the other order could lose a post. So the record can
        # wait a moment and be written with the next ones: posts falling due every few
        # milliseconds woke the timer hundreds of times a second, each wake a database write.
        await self._sink.emit(out)
        emitted = time.time()
        if decision.dispatch:
            self._unrecorded += decision.dispatch
            if self._record_by is None:
                self._record_by = now.timestamp() + self._config.record_within.total_seconds()
        if decision.missed:
            await self._store.save(decision.missed)
        for post in [*decision.dispatch, *decision.missed]:
            self.timetable.put(post)
        if self._metrics:
            for post in decision.dispatch:
                self._metrics.lateness.observe(max(0.0, emitted - post.due_at.timestamp()))
            self._metrics.emitted.inc(len(decision.dispatch))
            self._metrics.missed.inc(len(decision.missed))
        if decision.missed:
            log.warning("posts missed their window", posts=[p.post_id for p in decision.missed])

    async def record_dispatched(self) -> None:
        """Write down now what was handed over and not recorded yet (also on the way out)."""
        pending, self._unrecorded, self._record_by = self._unrecorded, [], None
        if not pending:
            return
        try:
            await self._store.record_dispatched(pending)
        except Exception:
            self._unrecorded = pending + self._unrecorded
            self._record_by = self._clock.now().timestamp()
            raise

    async def record_before_leaving(self) -> None:
        """Record what waits before partitions move away or the service stops. A failure is
        logged, not raised: the next owner hands those posts over again, which the publisher's
        attempt ledger absorbs."""
        try:
            await self.record_dispatched()
        except Exception:
            log.warning("recording handed-over posts failed before leaving them", exc_info=True)

    async def compact(self) -> int:
        """Fold only dispatch records older than `compact_after`. By then the posts of a burst
        have mostly recorded their outcome, which compaction must not overwrite, so it writes
        nothing for them; folding at once rewrote every post still waiting for a slot."""
        written_before = self._clock.now() - self._config.compact_after
        # Both at one instant: a post handed over and not in flight any more has been saved in a
        # later state, so its record only needs dropping. (Folding all of them read every post
        # published in the last 30 s back from FerretDB, a burst of writes every 30 s.)
        partitions, in_flight = set(self.timetable.partitions), self.timetable.handed_over()
        return await self._store.compact(partitions, written_before, in_flight)

    # ----- bookkeeping -----------------------------------------------------------------------

    def _keep(self, post: Post) -> None:
        if post.state in domain.TERMINAL:
            self.timetable.remove(post.post_id)
        else:
            self.timetable.put(post)

    def _observe(self) -> None:
        if self._metrics:
            self._metrics.observe(self.timetable)


_COMMANDS = (PostCancelRequested, PostRescheduleRequested, PostRetryRequested)


def _creations_first(deliveries: Sequence[Delivery[Event]]) -> list[Delivery[Event]]:
    """The batch with its PostScheduled events first, the rest in their order.

    A batch interleaves several topics in no particular order, and a post's creation and a
    person's command on it (a cancel right after scheduling) can arrive in the same fetch: applied
    in fetch order, the command found no post and was refused. Nothing in a batch can come before
    the creation of the post it is about, so creations go first."""
    return sorted(deliveries, key=lambda d: not isinstance(d.event, PostScheduled))


class _Batch:
    """What one consumed batch changes, before it is saved."""

    def __init__(self, timetable: Timetable) -> None:
        self._timetable = timetable
        self.new: dict[str, Post] = {}
        self.changed: dict[str, Post] = {}
        self.finished: dict[str, Post] = {}
        self.out: list[Outgoing] = []

    def __contains__(self, post_id: str) -> bool:
        return self.current(post_id) is not None

    def current(self, post_id: str) -> Post | None:
        return (
            self.changed.get(post_id)
            or self.new.get(post_id)
            or self._timetable.get(post_id)
            or self.finished.get(post_id)
        )


def _post_from(event: PostScheduled, partition: int) -> Post:
    return Post(
        post_id=event.post_id,
        partition=partition,
        account_id=event.account_id,
        state=State.SCHEDULED,
        due_at=event.due_at,
        attempt=1,
        content=event.model_dump(mode="json", exclude=set(_ENVELOPE)),
    )


def _payload(post: Post) -> dict[str, Any]:
    return {**post.content, "producer": PRODUCER}


def _post_due(post: Post) -> PostDue:
    return PostDue.model_validate(
        {
            **_payload(post),
            "event_id": derived_event_id(post.post_id, "due", post.attempt),
            "due_at": post.due_at,
            "attempt": post.attempt,
        }
    )


def _rescheduled(post: Post) -> Outgoing:
    event = PostScheduled.model_validate(
        {
            **_payload(post),
            "event_id": derived_event_id(post.post_id, f"scheduled@{post.due_at.isoformat()}", post.attempt),
            "due_at": post.due_at,
            "attempt": post.attempt,
        }
    )
    return POSTS_SCHEDULED, event, post.post_id


def _missed(post: Post) -> PostFailed:
    return PostFailed.model_validate(
        {
            **_payload(post),
            "event_id": derived_event_id(post.post_id, "missed", post.attempt),
            "error_code": ErrorCode.MISSED,
            "error_message": post.reason or "missed",
            "attempts": post.attempt - 1,
        }
    )


def _command_effects(
    command: PostCancelRequested | PostRescheduleRequested | PostRetryRequested, post: Post
) -> list[Outgoing]:
    if isinstance(command, PostCancelRequested):
        cancelled = PostCancelled.model_validate(
            {
                **_payload(post),
                "event_id": derived_event_id(post.post_id, "cancelled", post.attempt),
                "reason": command.reason,
                "requested_by": command.requested_by,
            }
        )
        return [(POSTS_CANCELLED, cancelled, post.post_id)]
    return [_rescheduled(post)]


def _rejection(
    command: PostCancelRequested | PostRescheduleRequested | PostRetryRequested, reason: str, state: str
) -> Outgoing:
    rejected = PostCommandRejected(
        event_id=uuid5(_EVENT_NAMESPACE, f"rejected:{command.event_id}"),
        producer=PRODUCER,
        workspace_id=command.workspace_id,
        correlation_id=command.correlation_id,
        post_id=command.post_id,
        requested_by=command.requested_by,
        command=command.event_type,
        command_event_id=str(command.event_id),
        reason=reason,
        post_state=state,
    )
    return POSTS_COMMAND_REJECTED, rejected, command.post_id


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
