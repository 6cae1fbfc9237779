"""JSON encoding of events, their Kafka headers, and tolerant decoding."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TypeVar

from pydantic import ValidationError

from shared.events.envelope import Event

CONTENT_TYPE = "application/json"

E = TypeVar("E", bound=Event)


class MalformedEvent(ValueError):
    """The bytes are not an event we can read: they belong in the dead-letter topic."""


class UnknownEventType(ValueError):
    """A well-formed envelope of a type this consumer does not handle (added later, additively)."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"event type {event_type!r} is not handled here")
        self.event_type = event_type


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode()


def headers(event: Event) -> dict[str, str]:
    return {
        "event_type": event.event_type,
        "schema_version": str(event.schema_version),
        "event_id": str(event.event_id),
        "content-type": CONTENT_TYPE,
    }


def decode(body: bytes, accepted: Iterable[type[E]]) -> E:
    """Decode `body` as one of the `accepted` event classes, chosen by its `event_type`.

    Unknown fields and newer schema versions are read as far as this version knows them
    (tolerant reader); anything that is not a valid envelope raises MalformedEvent.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise MalformedEvent(f"expected a JSON object, got {type(data).__name__}")
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEvent("missing event_type")
    by_type = {cls.type_name(): cls for cls in accepted}
    cls = by_type.get(event_type)
    if cls is None:
        raise UnknownEventType(event_type)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise MalformedEvent(_describe(exc, event_type)) from exc


def _describe(exc: ValidationError, event_type: str) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
    )
    return f"invalid {event_type}: {problems}"
