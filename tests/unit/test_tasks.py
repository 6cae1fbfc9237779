"""The SIGUSR1 task dump names where a stuck task waits, down the whole await chain."""

from __future__ import annotations

import asyncio

from shared.tasks import awaiting, stop_tasks


async def _innermost(gate: asyncio.Event) -> None:
    await gate.wait()


async def _outer(gate: asyncio.Event) -> None:
    await _innermost(gate)


async def test_the_chain_reaches_the_innermost_await() -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(_outer(gate), name="stuck")
    await asyncio.sleep(0)
    chain = awaiting(task)
    assert [line.rsplit(" ", 1)[1] for line in chain[:3]] == ["_outer", "_innermost", "wait"]
    assert chain[-1].startswith("<Future")  # what it waits on
    gate.set()
    await task


async def test_stopping_a_task_that_swallows_its_cancellation_does_not_hang() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await release.wait()  # goes on, as PyMongo can mid-operation

    async def polite() -> None:
        await asyncio.sleep(10)

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(polite())]
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await stop_tasks(tasks, within=0.2)
    assert loop.time() - started < 2
    assert tasks[1].cancelled()
    assert not tasks[0].done()
    release.set()
    await tasks[0]
