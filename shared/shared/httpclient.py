"""An httpx client whose requests travel on aiohttp's connection pool.

Platform modules program against `httpx.AsyncClient` (and its `MockTransport` in tests). Under
load httpcore's pool cost a busy publisher about 2.8 ms of CPU per request, aiohttp's about
0.5 ms (docs/benchmarks.md), so the transport underneath is aiohttp.

The one thing a transport must get right for the no-double-post rule is which failures can
happen after the request reached the server. Only a failure to get a connection means nothing
was sent (`httpx.ConnectError`, `httpx.ConnectTimeout`); every later failure becomes a read error
or read timeout, which callers treat as "may have been sent". (The httpx-aiohttp package maps a
server disconnect to ConnectTimeout, which would make a lost response look like an unsent
request: that is why this module exists.)
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx

_NOT_SENT_TIMEOUT = aiohttp.ConnectionTimeoutError
_SET_BY_AIOHTTP = {"content-length", "transfer-encoding"}


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int, keepalive_seconds: float = 4.0) -> None:
        self._max_connections = max_connections
        # Below the 5 s idle timeout of common servers, so a pooled connection is rarely stale.
        self._keepalive = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: aiohttp binds a session to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, keepalive_timeout=self._keepalive
            )
            # httpx decodes the body itself from Content-Encoding, so aiohttp must not. No cookie
            # jar here either: see _Cookieless.
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _SET_BY_AIOHTTP]
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as response:
                content = await response.read()
                return httpx.Response(
                    response.status,
                    headers=[(k.decode(), v.decode()) for k, v in response.raw_headers],
                    content=content,
                    request=request,
                )
        except _NOT_SENT_TIMEOUT as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out connecting", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out reading", request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _Cookieless(httpx.AsyncClient):
    """A client that keeps no cookies. Platform APIs authenticate each request with its account's
    token, and one client serves every account: a cookie set in one account's answer must never
    ride along with another account's requests. (Reading every answer's Set-Cookie also cost the
    publisher 6 % of its CPU.)"""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._cookies = _NoCookies()  # what the `cookies` property of httpx returns

    @property
    def cookies(self) -> httpx.Cookies:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: httpx._types.CookieTypes) -> None:
        raise TypeError("this client keeps no cookies")


def build_http_client(
    *,
    max_connections: int,
    timeout_seconds: float,
    base_url: str = "",
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The client for platform APIs; `transport` replaces aiohttp's pool (tests pass a mock)."""
    return _Cookieless(
        base_url=base_url,
        transport=transport or AiohttpTransport(max_connections=max_connections),
        timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
        follow_redirects=False,
    )
