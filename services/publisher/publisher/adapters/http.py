"""The HTTP client the platform modules share.

httpcore's connection pool scans every connection for each request it assigns, so one pool of
hundreds of connections costs more CPU per request than the request itself. `ShardedTransport`
spreads requests over several small pools (round robin), keeping that scan short."""

from __future__ import annotations

import itertools

import httpx


class ShardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, shards: int, connections_per_shard: int) -> None:
        limits = httpx.Limits(max_connections=connections_per_shard, max_keepalive_connections=connections_per_shard)
        self._shards = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(max(1, shards))]
        self._next = itertools.cycle(self._shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


def build_http_client(*, max_connections: int, timeout_seconds: float, per_shard: int = 16) -> httpx.AsyncClient:
    shards = max(1, -(-max_connections // per_shard))
    return httpx.AsyncClient(
        transport=ShardedTransport(shards=shards, connections_per_shard=min(per_shard, max_connections)),
        timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
        follow_redirects=False,
    )
