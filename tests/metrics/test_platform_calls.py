"""PlatformCalls reading a round's credentials ahead: one read for the round, none kept after it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from pydantic import SecretStr

from metrics.domain import PullPolicy, PullStatus
from metrics.handlers import CallFailed, PlatformCalls
from shared.credentials import CredentialsNotFound, OAuthTokens, StoredCredentials
from shared.events import AccountStatus, Platform


def stored(account_id: str) -> StoredCredentials:
    tokens = OAuthTokens(access_token=SecretStr(f"token-{account_id}"))
    return StoredCredentials(account_id, "ws", "x", tokens, AccountStatus.ACTIVE, 1, datetime.now(UTC))


@dataclass
class CountingCredentials:
    records: dict[str, StoredCredentials]
    loads: list[str] = field(default_factory=list)
    batches: list[list[str]] = field(default_factory=list)

    async def load(self, account_id: str) -> StoredCredentials:
        self.loads.append(account_id)
        if account_id not in self.records:
            raise CredentialsNotFound(account_id)
        return self.records[account_id]

    async def load_many(self, account_ids: Collection[str]) -> dict[str, StoredCredentials]:
        self.batches.append(sorted(account_ids))
        return {a: self.records[a] for a in account_ids if a in self.records}

    async def replace_tokens(self, account_id: str, tokens: OAuthTokens, *, expected_version: int) -> int:
        raise AssertionError("not refreshed here")


async def token_of(creds: StoredCredentials) -> str:
    return creds.tokens.access_token.get_secret_value()


async def test_calls_in_a_round_share_one_read_and_read_their_own_after_it() -> None:
    credentials = CountingCredentials({a: stored(a) for a in ("a", "b")})
    calls = PlatformCalls(credentials, PullPolicy())
    source: Any = SimpleNamespace(platform=Platform.X)
    now = datetime.now(UTC)

    async with calls.reading_ahead({"a", "b", "gone"}):
        assert await calls.call(source, "a", now, token_of) == "token-a"
        assert await calls.call(source, "b", now, token_of) == "token-b"
        missing = await calls.call(source, "gone", now, token_of)
    assert (credentials.batches, credentials.loads) == ([["a", "b", "gone"]], ["gone"])
    assert isinstance(missing, CallFailed)
    assert missing.status is PullStatus.NO_CREDENTIALS

    assert await calls.call(source, "a", now, token_of) == "token-a"
    assert credentials.loads == ["gone", "a"]  # the round is over: nothing reused
