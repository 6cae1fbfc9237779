"""The event contract: encoding, tolerant decoding, and the shapes the models refuse."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from pydantic import ValidationError

from shared import topics
from shared.events import (
    ALL_EVENTS,
    MalformedEvent,
    PostDue,
    PostPublished,
    Schedule,
    UnknownEventType,
    decode,
    encode,
    headers,
)
from tests.samples import WHEN, all_samples, sample


@pytest.mark.parametrize("event", all_samples(), ids=lambda e: e.event_type)
def test_every_event_round_trips_through_json(event: object) -> None:
    assert decode(encode(event), ALL_EVENTS) == event  # type: ignore[arg-type]


def test_headers_carry_type_version_and_id() -> None:
    event = sample(PostDue)
    assert headers(event) == {
        "event_type": "PostDue",
        "schema_version": "1",
        "event_id": str(event.event_id),
        "content-type": "application/json",
    }


def test_events_are_frozen() -> None:
    event = sample(PostPublished)
    with pytest.raises(ValidationError):
        event.producer = "other"  # type: ignore[misc]


def test_a_newer_schema_version_with_unknown_fields_is_read_tolerantly() -> None:
    data = json.loads(encode(sample(PostPublished)))
    data.update(schema_version=2, reactions={"love": 3})
    event = decode(json.dumps(data).encode(), [PostPublished])
    assert event.schema_version == 2
    assert event.remote_id == "1789"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\x00", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"post_id": "p"}', "missing event_type"),
        (b'{"event_type": "PostDue", "producer": "x"}', "invalid PostDue"),
    ],
)
def test_malformed_messages_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        decode(body, [PostDue])


def test_an_event_type_not_handled_here_is_distinguished_from_garbage() -> None:
    with pytest.raises(UnknownEventType) as info:
        decode(encode(sample(PostPublished)), [PostDue])
    assert info.value.event_type == "PostPublished"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"publish_now": True, "at_utc": WHEN},
        {"local_time": datetime(2026, 1, 1, 9), "at_utc": WHEN},
        {"local_time": WHEN},  # a local time must not carry an offset
    ],
)
def test_a_schedule_is_exactly_one_kind(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Schedule(**kwargs)  # type: ignore[arg-type]


def test_topic_names_match_the_public_contract() -> None:
    assert topics.posts_due("tiktok") == "posts.due.tiktok.v1"
    assert topics.dead_letter(topics.POSTS_FAILED) == "posts.failed.v1.dlq"
    names = topics.all_topics(with_dead_letters=False)
    assert len(names) == len(set(names)) == 23
    assert {e for spec in topics.CATALOG for e in spec.events} == set(ALL_EVENTS)
