"""What every platform module shares: the Protocol the handlers call, the results and errors it
returns, and one HTTP helper that tells a call that may have gone through from one that did not.

A platform module knows nothing of Kafka or MongoDB. It takes an injected `httpx.AsyncClient`, a
base URL, and per call a `Session` (token and platform-side identity) and a `Checkpoint` (where
it saves every intermediate platform id before the call that makes a post live).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

import httpx

from publisher.domain import CaptionRules, Limit
from shared.credentials import OAuthTokens
from shared.events import AccountStatus, ErrorCode, MediaRef, Platform, PostDue, PostFormat, utc_now

Json = dict[str, Any]
MediaFetcher = Callable[[MediaRef], Awaitable[bytes]]


@dataclass(frozen=True)
class Session:
    account_id: str
    external_id: str
    access_token: str
    profile: Mapping[str, Any] = field(default_factory=dict)
    username: str | None = None


class Checkpoint(Protocol):
    """The attempt's saved intermediate ids. `save` returns once they are durable."""

    @property
    def saved(self) -> Mapping[str, str]: ...

    async def save(self, **ids: str) -> None: ...


@dataclass(frozen=True)
class LiveQuota:
    used: int
    limit: int
    window: timedelta
    reset_at: datetime | None = None


@dataclass(frozen=True)
class Published:
    remote_id: str
    permalink: str | None
    published_at: datetime = field(default_factory=utc_now)
    visibility: str | None = None
    quota: LiveQuota | None = None


@dataclass(frozen=True)
class Identity:
    external_id: str
    username: str | None = None


@dataclass(frozen=True)
class PlatformDefaults:
    base_url: str
    token_url: str | None = None  # absolute; None: a path under base_url chosen by the module
    limit: Limit | None = None  # per account
    app_limit: Limit | None = None
    refresh_margin: timedelta = timedelta(minutes=10)


class PlatformError(Exception):
    """A call the platform refused (or that never reached it), as one of our error codes, with the
    platform's own words and raw error kept for a person to read."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        detail: Mapping[str, Any] | None = None,
        retry_at: datetime | None = None,
        account_status: AccountStatus | None = None,
        quota: LiveQuota | None = None,
    ) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.detail = dict(detail or {})
        self.retry_at = retry_at
        self.account_status = account_status
        self.quota = quota


class AmbiguousPublish(Exception):
    """The call that makes a post live was sent, and its answer was lost (timeout, reset): the post
    may be live. Never repeated blindly; the attempt is reconciled."""


class NotLive(Exception):
    """Reconciliation found for certain that the attempt's post never went live."""


class PlatformClient(Protocol):
    platform: ClassVar[Platform]
    formats: ClassVar[frozenset[PostFormat]]
    caption_rules: ClassVar[CaptionRules]
    reconcilable: ClassVar[bool]  # False: an ambiguous attempt can only become publish_unconfirmed
    # Checkpoint ids a retry continues from instead of starting over (a TikTok publish_id: the post
    # is already on its way, and a second init would be a second post).
    resumable: ClassVar[frozenset[str]]

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        """Why this post cannot be published here as it is (media count, missing target), or None."""
        ...

    async def publish(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published: ...

    async def reconcile(self, job: PostDue, session: Session, checkpoint: Checkpoint, since: datetime) -> Published:
        """The outcome of an attempt whose result was never recorded. Uses the saved ids and what the
        platform offers; finishes the attempt where the platform makes that safe (an unpublished
        container, an unfinished upload session). Raises NotLive when it certainly did not go live,
        PlatformError(publish_unconfirmed) when there is no way to know."""
        ...

    async def whoami(self, access_token: str, profile: Mapping[str, Any]) -> Identity: ...

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        """New tokens (a rotating platform also returns a new refresh token). PlatformError(token_expired)
        when the grant is dead and only a reconnect helps."""
        ...

    async def live_quota(self, session: Session) -> LiveQuota | None: ...


# Transport errors after which the request may have reached the platform.
_MAYBE_SENT = (httpx.ReadTimeout, httpx.ReadError, httpx.WriteError, httpx.WriteTimeout, httpx.RemoteProtocolError)


class Http:
    """The injected client plus the one distinction that matters for never posting twice."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    async def call(self, method: str, path: str, *, go_live: bool = False, **kwargs: Any) -> httpx.Response:
        """One request. Transport failures become network_error, except when `go_live` and the
        request may have been sent: then AmbiguousPublish. So does a server error answering a
        `go_live` call: a gateway or application error after the platform stored the post is the
        classic "error that was really a success". 503 alone says the request was not taken."""
        try:
            response = await self.client.request(method, self.url(path), **kwargs)
        except _MAYBE_SENT as exc:
            if go_live:
                raise AmbiguousPublish(f"{type(exc).__name__} after sending {method} {path}") from exc
            raise PlatformError(ErrorCode.NETWORK_ERROR, f"{type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:  # connect errors and pool timeouts: nothing was sent
            raise PlatformError(ErrorCode.NETWORK_ERROR, f"{type(exc).__name__}: {exc}") from exc
        if go_live and response.status_code >= 500 and response.status_code != 503:
            raise AmbiguousPublish(f"HTTP {response.status_code} from {method} {path}: {response.text[:300]}")
        return response


def body_of(response: httpx.Response) -> Json:
    try:
        body = response.json()
    except ValueError:
        return {"raw": response.text[:2000]}
    return body if isinstance(body, dict) else {"data": body}


def generic_error(response: httpx.Response, message: str | None = None) -> PlatformError:
    """A fallback translation by HTTP status."""
    body = body_of(response)
    text = message or str(body.get("message") or body.get("detail") or response.reason_phrase)
    status = response.status_code
    if status == 401:
        return PlatformError(ErrorCode.TOKEN_EXPIRED, text, status=status, detail=body)
    if status == 429:
        return PlatformError(ErrorCode.RATE_LIMITED, text, status=status, detail=body)
    if status >= 500:
        return PlatformError(ErrorCode.NETWORK_ERROR, text, status=status, detail=body)
    if status in (400, 413, 415, 422):
        return PlatformError(ErrorCode.CONTENT_REJECTED, text, status=status, detail=body)
    return PlatformError(ErrorCode.UNKNOWN_ERROR, text, status=status, detail=body)


async def refresh_grant(
    http: Http,
    token_url: str,
    tokens: OAuthTokens,
    *,
    form: Mapping[str, str | None] | None = None,
    read_scopes: bool = False,
    **request: Any,
) -> OAuthTokens:
    """The OAuth 2 refresh_token grant. A rotating platform's new refresh token replaces the old
    one; `read_scopes`: the answer lists the granted scopes (comma or space separated). Form fields
    without a value (a client secret that is not configured) are left out.

    Only a client error means the grant is dead (token_expired: a reconnect is needed); throttling
    and server errors pass, and must not send the account to a reconnect."""
    if tokens.refresh_token is None:
        raise PlatformError(ErrorCode.TOKEN_EXPIRED, "no refresh token: the account has to be reconnected")
    extra = {k: v for k, v in (form or {}).items() if v}
    data = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token.get_secret_value(), **extra}
    response = await http.call("POST", token_url, data=data, **request)
    body = body_of(response)
    status = response.status_code
    if status >= 400 or "access_token" not in body:
        error = body.get("error")
        nested = error.get("message") if isinstance(error, dict) else None  # TikTok nests it
        words = body.get("error_description") or body.get("message") or nested or error
        message = str(words or response.reason_phrase)
        code = ErrorCode.TOKEN_EXPIRED
        if status == 429:
            code = ErrorCode.RATE_LIMITED
        elif status >= 500:
            code = ErrorCode.NETWORK_ERROR
        raise PlatformError(code, message, status=status, detail=body)
    granted = re.split(r"[,\s]+", str(body.get("scope") or "")) if read_scopes else []
    return OAuthTokens(
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token") or tokens.refresh_token,
        expires_at=expires_at(body.get("expires_in")),
        scopes=[s for s in granted if s.strip()] or tokens.scopes,
        token_type=tokens.token_type,
    )


async def wait_until(check: Callable[[], Awaitable[bool]], *, every: float, within: float, what: str) -> None:
    """Poll `check` until it holds; network_error (retryable) if processing takes too long."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    delay = min(0.05, every)
    while not await check():
        if loop.time() >= deadline:
            raise PlatformError(ErrorCode.NETWORK_ERROR, f"{what} still processing after {within:.0f}s")
        await asyncio.sleep(delay)
        delay = min(every, delay * 2)


@dataclass(frozen=True)
class Polling:
    every: float = 2.0
    timeout: float = 300.0


def expires_at(expires_in: Any, now: datetime | None = None) -> datetime | None:
    if expires_in in (None, ""):
        return None
    return (now or utc_now()) + timedelta(seconds=float(expires_in))


def same_text(a: str, b: str) -> bool:
    return a.strip() == b.strip()
