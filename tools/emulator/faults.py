"""Fault injection: rules matched per call by platform, account and operation, fired by rate or by count."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FaultKind(StrEnum):
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    CONTENT_REJECTED = "content_rejected"
    SPAM = "spam"
    # The call succeeds (the post IS created), then the response is held past the client's timeout
    # and/or the connection is closed before the body, or (with `status`) replaced by a server error.
    LOST_RESPONSE = "lost_response"


class Op(StrEnum):
    READ = "read"
    PREPARE = "prepare"  # containers, upload sessions, media uploads
    PUBLISH = "publish"  # the call that makes a post live
    AUTH = "auth"  # token endpoints


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    platform: str | None = None
    account_id: str | None = None
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    applies_to: Literal["publish", "any"] = "publish"
    hold_ms: int = Field(default=60_000, ge=0)
    drop_connection: bool = False
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: int | None = Field(default=None, ge=1, description="rate_limit: seconds until the reset it names")
    message: str | None = None


@dataclass
class Fault:
    id: str
    spec: FaultSpec
    remaining: int | None
    fired: int = 0

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, **self.spec.model_dump(), "remaining": self.remaining, "fired": self.fired}


class FaultBook:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(id=f"fault-{next(self._ids)}", spec=spec, remaining=spec.count)
        self._faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) != before

    def clear(self) -> None:
        self._faults.clear()

    def all(self) -> list[Fault]:
        return list(self._faults)

    def pick(self, platform: str, account_id: str | None, op: Op) -> Fault | None:
        """The first matching rule that fires for this call, if any (rules fire in insertion order)."""
        if not self._faults:
            return None
        for fault in self._faults:
            spec = fault.spec
            if spec.platform is not None and spec.platform != platform:
                continue
            if spec.account_id is not None and spec.account_id != account_id:
                continue
            if spec.applies_to == "publish" and op is not Op.PUBLISH:
                continue
            if spec.rate < 1.0 and self._rng.random() >= spec.rate:
                continue
            if spec.kind is not FaultKind.LOST_RESPONSE:
                self._fire(fault)
            return fault  # a lost response fires only once the call succeeded: see `lose`
        return None

    def lose(self, fault: Fault) -> bool:
        """Fire a lost-response rule for a call that succeeded; False when concurrent calls have
        used up its count meanwhile (their answers were lost, this one is not)."""
        if fault not in self._faults:
            return False
        self._fire(fault)
        return True

    def _fire(self, fault: Fault) -> None:
        fault.fired += 1
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
