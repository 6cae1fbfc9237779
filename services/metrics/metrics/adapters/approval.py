"""API keys are the approval service's: it creates and hashes them in its own database. This
adapter asks it who a key belongs to (`GET /v1/workspace` with the caller's Authorization
header) and remembers the verdict briefly, so a burst of reads costs one check per key.

The cache is keyed by a SHA-256 of the header, never by the key itself, and forgets a refused
key sooner than an accepted one (a key created a moment ago must not stay refused).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx

from shared.logging import get_logger

log = get_logger(__name__)

_MAX_CACHED = 10_000
_REFUSAL_TTL_SECONDS = 2.0


@dataclass(frozen=True)
class Caller:
    workspace_id: str
    role: str | None  # None when the approval service does not report it


class KeyRefused(Exception):
    """The approval service does not know the key (or it was revoked)."""

    def __init__(self, message: str, code: str = "unauthenticated") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class KeyCheckUnavailable(Exception):
    """The approval service could not be asked; nothing is decided."""


class ApprovalKeys:
    def __init__(self, http: httpx.AsyncClient, *, cache_seconds: float) -> None:
        self._http = http
        self._ttl = cache_seconds
        self._cache: OrderedDict[str, tuple[float, Caller | KeyRefused]] = OrderedDict()

    async def verify(self, authorization: str | None) -> Caller:
        if not authorization:
            raise KeyRefused("missing API key: send 'Authorization: Bearer sp_<id>_<secret>'")
        fingerprint = hashlib.sha256(authorization.encode()).hexdigest()
        cached = self._cache.get(fingerprint)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            verdict = cached[1]
        else:
            verdict = await self._ask(authorization)
            ttl = self._ttl if isinstance(verdict, Caller) else min(self._ttl, _REFUSAL_TTL_SECONDS)
            self._cache[fingerprint] = (now + ttl, verdict)
            self._cache.move_to_end(fingerprint)
            while len(self._cache) > _MAX_CACHED:
                self._cache.popitem(last=False)
        if isinstance(verdict, KeyRefused):
            raise verdict
        return verdict

    async def _ask(self, authorization: str) -> Caller | KeyRefused:
        try:
            response = await self._http.get("/v1/workspace", headers={"Authorization": authorization})
        except httpx.HTTPError as exc:
            log.warning("approval service unreachable for a key check", error_type=type(exc).__name__)
            raise KeyCheckUnavailable("the approval service, which verifies API keys, is unreachable") from None
        if response.status_code in (401, 403):
            return KeyRefused(_message(response) or "unknown or revoked API key")
        if response.status_code != 200:
            log.warning("approval service failed a key check", status=response.status_code)
            raise KeyCheckUnavailable(f"the approval service answered {response.status_code} to a key check")
        body = response.json()
        role = body.get("role") or body.get("caller_role")
        return Caller(workspace_id=str(body["workspace_id"]), role=str(role) if role else None)


def _message(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except ValueError:
        return None
    return str(error.get("message")) if isinstance(error, dict) and error.get("message") else None
