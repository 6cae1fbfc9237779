"""The shared credentials store on the real MongoDB-compatible server: encryption at rest,
compare-and-set refreshes, key rotation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from shared.credentials import (
    COLLECTION,
    CredentialsNotFound,
    CredentialsSettings,
    CredentialStore,
    OAuthTokens,
    StaleCredentials,
    UndecryptableCredentials,
    build_cipher,
    reencrypt_all,
)
from shared.events import AccountStatus
from shared.logging import redact_text
from shared.mongo import Document

pytestmark = pytest.mark.integration

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def tokens(access: str, refresh: str) -> OAuthTokens:
    return OAuthTokens(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh),
        expires_at=datetime(2027, 1, 1, tzinfo=UTC),
        scopes=["publish", "read"],
    )


def store(db: AsyncDatabase[Document], *keys: str) -> CredentialStore:
    return CredentialStore.in_database(db, build_cipher(CredentialsSettings(keys=[SecretStr(k) for k in keys])))


async def test_round_trip_without_plaintext_at_rest(db: AsyncDatabase[Document]) -> None:
    creds = store(db, OLD)
    version = await creds.save(
        account_id="acc1", workspace_id="ws", platform="x", tokens=tokens("access-AAA-111", "refresh-BBB-222")
    )
    raw = await db[COLLECTION].find_one({"_id": "acc1"})
    assert raw is not None
    assert "access-AAA-111" not in str(raw)
    assert "refresh-BBB-222" not in str(raw)
    loaded = await creds.load("acc1")
    assert loaded.version == version
    assert loaded.tokens.access_token.get_secret_value() == "access-AAA-111"
    assert "access-AAA-111" not in repr(loaded)
    # Decrypted values are masked in every later log line.
    assert "access-AAA-111" not in redact_text("calling with access-AAA-111 now")
    await creds.mark_status("acc1", AccountStatus.REVOKED)
    assert (await creds.load("acc1")).status is AccountStatus.REVOKED
    with pytest.raises(CredentialsNotFound):
        await creds.load("missing")


async def test_two_concurrent_refreshes_one_wins_and_no_token_is_lost(db: AsyncDatabase[Document]) -> None:
    creds = store(db, OLD)
    await creds.save(account_id="acc1", workspace_id="ws", platform="x", tokens=tokens("a0", "r0-rotating"))
    current = await creds.load("acc1")
    results = await asyncio.gather(
        creds.replace_tokens("acc1", tokens("a1", "r1-rotating"), expected_version=current.version),
        creds.replace_tokens("acc1", tokens("a2", "r2-rotating"), expected_version=current.version),
        return_exceptions=True,
    )
    assert sum(isinstance(r, StaleCredentials) for r in results) == 1
    winner = (await creds.load("acc1")).tokens.refresh_token
    assert winner is not None
    assert winner.get_secret_value() in {"r1-rotating", "r2-rotating"}
    stale = next(r for r in results if isinstance(r, StaleCredentials))
    assert "rotating" not in str(stale)


async def test_key_rotation_reencrypts_everything_under_the_newest_key(db: AsyncDatabase[Document]) -> None:
    await store(db, OLD).save(account_id="acc1", workspace_id="ws", platform="x", tokens=tokens("a-one", "r-one"))
    await store(db, OLD).save(account_id="acc2", workspace_id="ws", platform="x", tokens=tokens("a-two", "r-two"))
    rotated = build_cipher(CredentialsSettings(keys=[SecretStr(NEW), SecretStr(OLD)]))
    assert await reencrypt_all(db[COLLECTION], rotated) == 2
    new_only = store(db, NEW)
    assert (await new_only.load("acc2")).tokens.access_token.get_secret_value() == "a-two"
    with pytest.raises(UndecryptableCredentials) as info:
        await store(db, Fernet.generate_key().decode()).load("acc1")
    assert "a-one" not in str(info.value)


def test_a_development_key_is_generated_once_and_reused(tmp_path: Path) -> None:
    settings = CredentialsSettings(dev_key_file=tmp_path / "dev.key")
    first = build_cipher(settings)
    token = first.encrypt(b"x")
    assert build_cipher(settings).decrypt(token) == b"x"
    assert (tmp_path / "dev.key").stat().st_mode & 0o077 == 0


async def test_expiring_counts_active_accounts_without_a_refresh_token(db: AsyncDatabase[Document]) -> None:
    creds = store(db, OLD)
    now = datetime.now(UTC)

    def dying_in(days: float, refresh: str | None = None) -> OAuthTokens:
        token = SecretStr(refresh) if refresh else None
        return OAuthTokens(access_token=SecretStr("a"), refresh_token=token, expires_at=now + timedelta(days=days))

    for account_id, platform, tokens_ in (
        ("soon-1", "linkedin", dying_in(2)),
        ("soon-2", "linkedin", dying_in(3)),
        ("soon-ig", "instagram", dying_in(1)),
        ("later", "linkedin", dying_in(30)),
        ("refreshes", "x", dying_in(0.1, "r-rotating")),
    ):
        await creds.save(account_id=account_id, workspace_id="ws", platform=platform, tokens=tokens_)
    await creds.mark_status("soon-2", AccountStatus.TOKEN_EXPIRED)  # already held, already alerted
    horizon = now + timedelta(days=7)
    assert await creds.expiring_by_platform(horizon) == {"linkedin": 1, "instagram": 1}
    # A refresh that comes back without a refresh token leaves the account unable to renew itself.
    version = (await creds.load("refreshes")).version
    await creds.replace_tokens("refreshes", dying_in(0.1), expected_version=version)
    assert await creds.expiring_by_platform(horizon) == {"linkedin": 1, "instagram": 1, "x": 1}


async def test_load_many_reads_a_batch_and_leaves_out_the_missing_and_undecryptable(
    db: AsyncDatabase[Document],
) -> None:
    creds = store(db, OLD)
    for n in range(3):
        await creds.save(account_id=f"acc-{n}", workspace_id="ws", platform="x", tokens=tokens(f"a{n}", f"r{n}"))
    await store(db, NEW).save(account_id="other-key", workspace_id="ws", platform="x", tokens=tokens("a", "r"))

    found = await creds.load_many(["acc-0", "acc-2", "other-key", "never-connected"])

    assert sorted(found) == ["acc-0", "acc-2"]
    assert found["acc-2"].tokens.access_token.get_secret_value() == "a2"
    assert found["acc-0"] == await creds.load("acc-0")
