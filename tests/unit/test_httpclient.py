"""The aiohttp-backed httpx transport: round trips, and which failures mean "maybe sent"."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from shared.httpclient import build_http_client
from tests.support import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length) if length else b""


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []
    handlers: list[asyncio.Task[None]] = []

    async def start(handler: Handler) -> str:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(run, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    await asyncio.gather(*handlers, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_round_trip_keeps_method_headers_body_and_decodes_gzip(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                seen.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            body = gzip.compress(json.dumps({"echo": len(seen)}).encode())
            writer.write(
                b"HTTP/1.1 201 Created\r\nContent-Encoding: gzip\r\nX-Restli-Id: urn:li:share:7\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()

    url = await serve(handler)
    async with build_http_client(max_connections=4, timeout_seconds=5) as client:
        first = await client.post(f"{url}/rest/posts?x=1", json={"a": 1}, headers={"Authorization": "Bearer t"})
        second = await client.get(f"{url}/again")
    assert first.status_code == 201
    assert first.json() == {"echo": 1}
    assert first.headers["x-restli-id"] == "urn:li:share:7"
    assert second.json() == {"echo": 2}  # the same kept-alive connection answered both
    head, body = seen[0]
    assert head.startswith(b"POST /rest/posts?x=1 HTTP/1.1")
    assert b"authorization: bearer t" in head.lower()
    assert json.loads(body) == {"a": 1}


async def test_a_cookie_set_in_one_answer_is_not_sent_with_the_next_request(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head, _ = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            heads.append(head.lower())
            writer.write(b"HTTP/1.1 200 OK\r\nSet-Cookie: session=account-a; Path=/\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    url = await serve(handler)
    async with build_http_client(max_connections=4, timeout_seconds=5) as client:
        await client.get(f"{url}/me", headers={"Authorization": "Bearer account-a"})
        await client.get(f"{url}/me", headers={"Authorization": "Bearer account-b"})
    assert len(heads) == 2
    assert b"cookie:" not in heads[1]


async def test_nothing_listening_is_a_connect_error() -> None:
    async with build_http_client(max_connections=4, timeout_seconds=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{free_port()}/2/tweets", json={})


async def test_a_connection_closed_after_the_request_is_a_read_error(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    received = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        received.set()  # the platform acted on it; closing without an answer loses the answer

    url = await serve(handler)
    async with build_http_client(max_connections=4, timeout_seconds=5) as client:
        with pytest.raises(httpx.ReadError):
            await client.post(f"{url}/2/tweets", json={"text": "hi"})
    assert received.is_set()


async def test_a_server_that_never_answers_is_a_read_timeout(serve: Callable[[Handler], Awaitable[str]]) -> None:
    answered = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await answered.wait()

    url = await serve(handler)
    async with build_http_client(max_connections=4, timeout_seconds=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{url}/2/tweets", json={"text": "hi"})
    answered.set()
