"""Connected accounts' OAuth tokens, encrypted at rest, in one collection shared by the services
that need them (approval writes them; publisher and metrics read and refresh them).

This module owns the collection's format and encryption; nothing else reads it directly.

- One document per account: `_id` is the account id; the tokens are one Fernet ciphertext.
- Keys: `CredentialsSettings.keys` (env `SOCIALPUB_CREDENTIALS__KEYS`, a JSON list of Fernet keys,
  newest first). The first key encrypts, every key decrypts; add a new key in front, run
  `reencrypt_all`, then drop the old key.
- `version` increases on every write. `replace_tokens` is a compare-and-set on it, so of two
  concurrent refreshes exactly one wins and a rotating refresh token is never lost to a race.
- Tokens are SecretStr in memory and registered with the log redaction when decrypted; they never
  appear in reprs, exceptions, events or API responses.
- Non-secret identity travels next to the ciphertext, in clear: `external_id` (the platform-side
  account id: IG user id, page id, X user id, channel id, ...) and `profile` (platform facts such as
  a Telegram chat id or a Pinterest board). Records written before these fields existed read back
  with `external_id=None` and an empty profile.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr
from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.events import AccountStatus, utc_now
from shared.logging import get_logger, register_secret
from shared.mongo import Document, bulk_write_chunked

log = get_logger(__name__)
# Ids per `$in` read: our FerretDB serves up to 1,000 from its `_id` index (deploy/local/stack.py).
_LOAD_CHUNK = 500

COLLECTION = "credentials"
KEYS_ENV = "SOCIALPUB_CREDENTIALS__KEYS"
DEFAULT_DEV_KEY_FILE = Path.home() / ".cache" / "socialpub" / "credentials-dev.key"


class CredentialsSettings(BaseModel):
    database: str = "socialpub_credentials"
    keys: list[SecretStr] = Field(
        default_factory=list, description="Fernet keys, newest first: the first encrypts, all decrypt"
    )
    dev_key_file: Path = Field(
        default=DEFAULT_DEV_KEY_FILE, description="Where a generated development key is kept when no key is set"
    )


class OAuthTokens(BaseModel):
    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    expires_at: AwareDatetime | None = None
    scopes: list[str] = Field(default_factory=list)
    token_type: str = "bearer"  # noqa: S105 - a scheme name, not a secret


@dataclass(frozen=True)
class StoredCredentials:
    account_id: str
    workspace_id: str
    platform: str
    tokens: OAuthTokens
    status: AccountStatus
    version: int
    updated_at: datetime
    external_id: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)


class CredentialsError(Exception):
    """Base class; messages name the account, never a token."""


class CredentialsNotFound(CredentialsError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"no credentials stored for account {account_id}")
        self.account_id = account_id


class StaleCredentials(CredentialsError):
    """Someone else replaced the tokens first: reload and use theirs."""

    def __init__(self, account_id: str, expected_version: int) -> None:
        super().__init__(f"credentials of account {account_id} changed since version {expected_version}")
        self.account_id = account_id
        self.expected_version = expected_version


class UndecryptableCredentials(CredentialsError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"credentials of account {account_id} cannot be decrypted with the configured keys")
        self.account_id = account_id


def build_cipher(settings: CredentialsSettings) -> MultiFernet:
    """MultiFernet over the configured keys; without any, a development key kept in a local file."""
    keys = [k.get_secret_value() for k in settings.keys]
    if not keys:
        keys = [_development_key(settings.dev_key_file)]
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _development_key(path: Path) -> str:
    if path.exists():
        key = path.read_text().strip()
    else:
        key = Fernet.generate_key().decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
    log.warning(
        "NO CREDENTIALS KEY CONFIGURED: using a development key from a local file. "
        "Never run like this outside a developer machine.",
        key_file=str(path),
        configure_with=KEYS_ENV,
    )
    return key


class CredentialStore:
    def __init__(self, collection: AsyncCollection[Document], cipher: MultiFernet) -> None:
        self._collection = collection
        self._cipher = cipher

    @classmethod
    def in_database(cls, db: AsyncDatabase[Document], cipher: MultiFernet) -> CredentialStore:
        return cls(db[COLLECTION], cipher)

    async def save(
        self,
        *,
        account_id: str,
        workspace_id: str,
        platform: str,
        tokens: OAuthTokens,
        status: AccountStatus = AccountStatus.ACTIVE,
        external_id: str | None = None,
        profile: dict[str, Any] | None = None,
    ) -> int:
        """Store the tokens of a connect or reconnect (overwriting any previous ones); returns the version.

        `external_id` and `profile` are kept as they were when not given."""
        now = utc_now()
        identity: dict[str, Any] = {}
        if external_id is not None:
            identity["external_id"] = external_id
        if profile is not None:
            identity["profile"] = profile
        doc = await self._collection.find_one_and_update(
            {"_id": account_id},
            {
                "$set": {
                    "workspace_id": workspace_id,
                    "platform": platform,
                    "ciphertext": self._encrypt(tokens),
                    "expires_at": tokens.expires_at,
                    "refreshable": tokens.refresh_token is not None,
                    "status": status.value,
                    "updated_at": now,
                    **identity,
                },
                "$inc": {"version": 1},
                "$setOnInsert": {"created_at": now},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        return int(doc["version"])

    async def load(self, account_id: str) -> StoredCredentials:
        doc = await self._collection.find_one({"_id": account_id})
        if doc is None:
            raise CredentialsNotFound(account_id)
        return self._stored(doc)

    async def load_many(self, account_ids: Collection[str]) -> dict[str, StoredCredentials]:
        """The stored credentials of these accounts, by `_id` `$in` in chunks: one command where
        loading each would take one per account. Accounts without credentials, or whose
        credentials cannot be decrypted, are left out (`load` says why)."""
        ids = list(account_ids)
        found: dict[str, StoredCredentials] = {}
        for start in range(0, len(ids), _LOAD_CHUNK):
            async for doc in self._collection.find({"_id": {"$in": ids[start : start + _LOAD_CHUNK]}}):
                try:
                    found[doc["_id"]] = self._stored(doc)
                except UndecryptableCredentials:
                    log.warning("credentials cannot be decrypted", account_id=doc["_id"])
        return found

    def _stored(self, doc: Document) -> StoredCredentials:
        account_id = doc["_id"]
        return StoredCredentials(
            account_id=account_id,
            workspace_id=doc["workspace_id"],
            platform=doc["platform"],
            tokens=self._decrypt(account_id, doc["ciphertext"]),
            status=AccountStatus(doc["status"]),
            version=int(doc["version"]),
            updated_at=doc["updated_at"],
            external_id=doc.get("external_id"),
            profile=dict(doc.get("profile") or {}),
        )

    async def replace_tokens(self, account_id: str, tokens: OAuthTokens, *, expected_version: int) -> int:
        """Store refreshed tokens only if nobody else did since `expected_version`; returns the new version."""
        doc = await self._collection.find_one_and_update(
            {"_id": account_id, "version": expected_version},
            {
                "$set": {
                    "ciphertext": self._encrypt(tokens),
                    "expires_at": tokens.expires_at,
                    "refreshable": tokens.refresh_token is not None,
                    "updated_at": utc_now(),
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            if await self._collection.count_documents({"_id": account_id}, limit=1) == 0:
                raise CredentialsNotFound(account_id)
            raise StaleCredentials(account_id, expected_version)
        return int(doc["version"])

    async def mark_status(self, account_id: str, status: AccountStatus) -> None:
        result = await self._collection.update_one(
            {"_id": account_id}, {"$set": {"status": status.value, "updated_at": utc_now()}}
        )
        if result.matched_count == 0:
            raise CredentialsNotFound(account_id)

    async def change_status(self, account_id: str, status: AccountStatus, *, expected: AccountStatus) -> bool:
        """Move the account from `expected` to `status`; False if it was not in `expected` (someone
        else changed it first), so of many workers noticing a dead token exactly one reports it."""
        result = await self._collection.update_one(
            {"_id": account_id, "status": expected.value}, {"$set": {"status": status.value, "updated_at": utc_now()}}
        )
        return result.modified_count == 1

    async def set_identity(self, account_id: str, *, external_id: str, profile: dict[str, Any] | None = None) -> None:
        """Record the platform-side account id (and profile facts) learned from the platform."""
        fields: dict[str, Any] = {"external_id": external_id}
        if profile is not None:
            fields["profile"] = profile
        result = await self._collection.update_one({"_id": account_id}, {"$set": fields})
        if result.matched_count == 0:
            raise CredentialsNotFound(account_id)

    async def expiring_by_platform(self, before: datetime) -> dict[str, int]:
        """Active accounts per platform whose token expires before `before` and that hold no refresh
        token: they go dark unless someone reconnects them (or, for Meta's long-lived tokens, the
        publisher refreshes them on its next post). Counted in Python: FerretDB lacks most `$group`."""
        counts: dict[str, int] = {}
        cursor = self._collection.find(
            {"status": AccountStatus.ACTIVE.value, "expires_at": {"$lt": before}, "refreshable": {"$ne": True}},
            projection={"platform": 1},
        )
        async for doc in cursor:
            counts[doc["platform"]] = counts.get(doc["platform"], 0) + 1
        return counts

    async def delete(self, account_id: str) -> None:
        await self._collection.delete_one({"_id": account_id})

    def _encrypt(self, tokens: OAuthTokens) -> str:
        plain = {
            "access_token": tokens.access_token.get_secret_value(),
            "refresh_token": tokens.refresh_token.get_secret_value() if tokens.refresh_token else None,
            "expires_at": tokens.expires_at.isoformat() if tokens.expires_at else None,
            "scopes": tokens.scopes,
            "token_type": tokens.token_type,
        }
        return self._cipher.encrypt(json.dumps(plain).encode()).decode()

    def _decrypt(self, account_id: str, ciphertext: str) -> OAuthTokens:
        try:
            plain: dict[str, Any] = json.loads(self._cipher.decrypt(ciphertext.encode()))
        except InvalidToken:
            raise UndecryptableCredentials(account_id) from None
        register_secret(plain["access_token"])
        register_secret(plain["refresh_token"])
        return OAuthTokens.model_validate(plain)


async def reencrypt_all(collection: AsyncCollection[Document], cipher: MultiFernet) -> int:
    """Re-encrypt every document under the newest key (after adding a key in front); returns how many.

    Each update is conditional on the old ciphertext, so a refresh that lands meanwhile wins and is
    not overwritten (it was already encrypted with the newest key).
    """
    operations: list[UpdateOne] = []
    async for doc in collection.find({}, {"ciphertext": 1}):
        old = doc["ciphertext"]
        try:
            new = cipher.rotate(old.encode()).decode()
        except InvalidToken:
            log.error("credentials cannot be decrypted with any configured key", account_id=doc["_id"])
            continue
        operations.append(UpdateOne({"_id": doc["_id"], "ciphertext": old}, {"$set": {"ciphertext": new}}))
    await bulk_write_chunked(collection, operations)
    return len(operations)


__all__ = [
    "COLLECTION",
    "KEYS_ENV",
    "CredentialStore",
    "CredentialsError",
    "CredentialsNotFound",
    "CredentialsSettings",
    "OAuthTokens",
    "StaleCredentials",
    "StoredCredentials",
    "UndecryptableCredentials",
    "build_cipher",
    "reencrypt_all",
]
