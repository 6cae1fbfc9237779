"""SIGTERM with a backlog: the publisher finishes the posts it is sending, starts none of the
queued ones, exits, and the next instance publishes the rest once each. Real process, real broker,
FerretDB and the emulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from uuid import uuid4

import pytest

from shared.events import Platform, PostPublished
from tests.publisher.harness import Stack
from tests.publisher.support import due

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

POSTS = 30
IN_FLIGHT = 2


async def test_sigterm_finishes_what_is_running_and_leaves_the_backlog_to_the_next_instance(stack: Stack) -> None:
    accounts = [await stack.connect(Platform.TELEGRAM, chat_id=f"@c{i}") for i in range(POSTS)]
    await stack.emulator.client.set_latency(1000, platform="telegram")
    first = await stack.start_publisher("telegram", PUBLISHER_MAX_IN_FLIGHT=str(IN_FLIGHT))
    run = uuid4().hex[:8]
    jobs = [
        due(Platform.TELEGRAM, caption=f"backlog {run} {i}", account_id=a, post_id=f"stop-{run}-{i}")
        for i, (a, _) in enumerate(accounts)
    ]

    async def live() -> Counter[str]:
        posts = await stack.emulator.client.posts("telegram")
        return Counter(p.text for p in posts if p.text.startswith(f"backlog {run} "))

    for job in jobs:
        await stack.send(job)
    await stack.watch.wait_for(PostPublished, within=60)

    live_at_sigterm = (await live()).total()
    assert await asyncio.to_thread(first.terminate, 30) == 0, first.log_tail()
    live_at_exit = (await live()).total()
    assert live_at_exit <= live_at_sigterm + IN_FLIGHT  # only the posts already being sent
    assert live_at_exit < POSTS  # a backlog was left, so the test says something

    await stack.emulator.client.set_latency(0, platform="telegram")
    await stack.start_publisher("telegram")
    for job in jobs:
        await stack.watch.wait_for(PostPublished, post_id=job.post_id, within=90)
    assert await live() == Counter({job.caption: 1 for job in jobs})  # each once
