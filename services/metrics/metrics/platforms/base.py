"""What every platform insight module shares: the request it gets, the result it returns, the
errors it raises, and the OAuth 2 refresh most platforms use.

A module knows nothing of Kafka or MongoDB: it takes an injected `httpx.AsyncClient` whose
base URL is the platform's API (the emulator locally) and translates the platform's answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol

import httpx
from pydantic import SecretStr

from metrics.domain import AccountMetrics
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform
from shared.logging import register_secret

Json = dict[str, Any]


@dataclass(frozen=True)
class PostRef:
    """The platform-side post whose insights are wanted."""

    post_id: str
    remote_id: str
    account_id: str
    published_at: datetime


@dataclass(frozen=True)
class Insights:
    metrics: CanonicalMetrics
    raw: Json
    # ok, or why there are no values although the call worked (not_enough_data, too_old)
    status: str = "ok"
    note: str | None = None


@dataclass(frozen=True)
class AccountRef:
    """The platform-side account: its id there (None when not recorded: the token's own account,
    `me`, is asked for) and the non-secret profile facts stored with the credentials."""

    account_id: str
    external_id: str | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountStats:
    metrics: AccountMetrics
    raw: Json


@dataclass(frozen=True)
class OAuthClient:
    """The app's OAuth client for a platform (client_id / client_secret), when it needs one."""

    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None


class InsightError(Exception):
    """A pull that did not work. `detail` is the platform's answer (never a token)."""

    def __init__(self, message: str, *, detail: Json | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class RateLimited(InsightError):
    """The platform's limit is reached; try again at `retry_at` (None: the platform did not say)."""

    def __init__(self, message: str, *, retry_at: datetime | None = None, detail: Json | None = None) -> None:
        super().__init__(message, detail=detail)
        self.retry_at = retry_at


class TokenRejected(InsightError):
    """The access token is expired, revoked or invalid (HTTP 401, Graph 190)."""


class PostGone(InsightError):
    """The platform no longer knows the post (deleted)."""


class TransientError(InsightError):
    """Network trouble or a 5xx: worth trying again later."""


class PermanentError(InsightError):
    """A 4xx the same request will always get (bad version, missing permission)."""


class InsightSource(Protocol):
    platform: Platform
    # Most posts one call can pull (all of one account); 1 where the platform takes one post per call.
    batch_size: int

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        """The post's current insights, mapped onto the canonical names, with the raw payload."""
        ...

    async def fetch_many(self, posts: Sequence[PostRef], access_token: str, now: datetime) -> list[Insights]:
        """The insights of up to `batch_size` posts of one account, in the order asked. An error
        of the call is raised (it applies to every post); a post without data has its own status."""
        ...

    async def fetch_account(self, account: AccountRef, access_token: str, now: datetime) -> AccountStats:
        """The account's current followers and other account-level values, with the raw payload."""
        ...

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        """New tokens (raises TokenRejected when the platform refuses to refresh)."""
        ...


@dataclass
class HttpPlatform:
    """Common plumbing: calls with error translation, and JSON decoding that never trusts the body."""

    http: httpx.AsyncClient
    oauth: OAuthClient = field(default_factory=OAuthClient)
    batch_size: ClassVar[int] = 1

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        raise NotImplementedError

    async def fetch_many(self, posts: Sequence[PostRef], access_token: str, now: datetime) -> list[Insights]:
        # One call per post: platforms with a batch endpoint override this and `batch_size`.
        return [await self.fetch(post, access_token, now) for post in posts]

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(f"timeout calling the platform: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise TransientError(f"network error calling the platform: {type(exc).__name__}") from None

    @staticmethod
    def body(response: httpx.Response) -> Json:
        try:
            decoded = response.json()
        except ValueError:
            return {"text": response.text[:500]}
        return decoded if isinstance(decoded, dict) else {"data": decoded}

    def generic_errors(self, response: httpx.Response, body: Json, now: datetime) -> None:
        """HTTP-level translation for platforms whose status codes speak for themselves."""
        status = response.status_code
        if status < 400:
            return
        if status == 429:
            raise RateLimited("the platform's rate limit is reached", retry_at=retry_after(response, now), detail=body)
        if status == 401:
            raise TokenRejected("the platform rejected the access token", detail=body)
        if status == 404:
            raise PostGone("the platform does not know this post", detail=body)
        if status >= 500:
            raise TransientError(f"the platform answered {status}", detail=body)
        raise PermanentError(f"the platform answered {status}", detail=body)

    async def oauth2_refresh(self, tokens: OAuthTokens, url: str, *, client_id_field: str = "client_id") -> OAuthTokens:
        """The standard refresh_token grant; keeps the old refresh token unless a new one comes back."""
        if tokens.refresh_token is None:
            raise TokenRejected("the account has no refresh token; it needs to be reconnected")
        form: dict[str, str] = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token.get_secret_value()}
        if self.oauth.client_id:
            form[client_id_field] = self.oauth.client_id
        if self.oauth.client_secret:
            form["client_secret"] = self.oauth.client_secret.get_secret_value()
        response = await self.call("POST", url, data=form)
        return token_response(response, tokens, self.body(response))


def token_response(response: httpx.Response, old: OAuthTokens, body: Json) -> OAuthTokens:
    error = body.get("error")
    access = body.get("access_token")
    if response.status_code >= 500:
        raise TransientError(f"the token endpoint answered {response.status_code}")
    if (
        response.status_code >= 400
        or not isinstance(access, str)
        or (isinstance(error, dict) and error.get("code") not in (None, "ok"))
    ):
        raise TokenRejected(
            "the platform refused to refresh the token; the account needs to be reconnected",
            detail={k: v for k, v in body.items() if "token" not in k},
        )
    refresh = body.get("refresh_token")
    register_secret(access)
    register_secret(refresh if isinstance(refresh, str) else None)
    expires_in = body.get("expires_in")
    now = datetime.now(UTC)
    return OAuthTokens(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh) if isinstance(refresh, str) else old.refresh_token,
        expires_at=now + timedelta(seconds=float(expires_in)) if isinstance(expires_in, int | float) else None,
        scopes=old.scopes,
        token_type=old.token_type,
    )


def retry_after(response: httpx.Response, now: datetime) -> datetime | None:
    """When to try again, from Retry-After (seconds or a date) or X's x-rate-limit-reset (epoch)."""
    value = response.headers.get("retry-after")
    if value:
        if value.strip().isdigit():
            return now + timedelta(seconds=int(value))
        try:
            return parsedate_to_datetime(value).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    for header in ("x-rate-limit-reset", "x-user-limit-24hour-reset", "x-app-limit-24hour-reset"):
        reset = response.headers.get(header)
        if reset and reset.strip().isdigit():
            return datetime.fromtimestamp(int(reset), UTC)
    return None
