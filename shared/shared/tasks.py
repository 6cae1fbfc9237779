"""Asyncio tasks of a running service: `kill -USR1 <pid>` logs every one with the chain of awaits it
is suspended in (for a service that looks stuck, without restarting it), and `stop_tasks` stops
background tasks with a bounded wait."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable
from typing import Any

from shared.logging import get_logger

log = get_logger(__name__)


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """file:line function of each coroutine in the task's await chain, outermost first. (Task.get_stack
    gives only one frame for a suspended coroutine.)"""
    chain: list[str] = []
    current: Any = task.get_coro()
    while current is not None and len(chain) < 50:
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            break  # the innermost await is on a future, named below
        chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    waiter = getattr(task, "_fut_waiter", None)  # CPython's own record of the future it waits on
    if waiter is not None:
        chain.append(repr(waiter)[:300])
    return chain


def dump_tasks() -> None:
    tasks = asyncio.all_tasks()
    log.warning("asyncio tasks", count=len(tasks))
    for task in tasks:
        log.warning("asyncio task", task=task.get_name(), awaiting=awaiting(task))


def install_task_dump() -> None:
    """In the running loop: SIGUSR1 dumps the tasks."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], *, within: float = 5.0) -> None:
    """Cancel the tasks and wait for them, at most `within` seconds. PyMongo's async API can swallow
    a cancellation that lands during an operation and go on (measured: 5 in 200 cancelled
    update_one loops kept running), so an unbounded wait could hang a shutdown for good."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    done, running = await asyncio.wait(pending, timeout=within)
    for task in done:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("task failed while stopping", task=task.get_name(), error=repr(exc))
    for task in running:
        log.warning("task still running after it was cancelled; left behind", task=task.get_name())
