"""The committed contract artifacts are current, and a breaking change to them is caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shared.contracts import SERVICES, asyncapi, breaking_changes, event_schemas

DOCS = Path(__file__).resolve().parents[2] / "docs"


def committed(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DOCS / "schemas" / name).read_text())
    return data


@pytest.mark.parametrize("name", sorted(event_schemas()))
def test_committed_schema_is_compatible_and_current(name: str) -> None:
    current = event_schemas()[name]
    assert breaking_changes(committed(name), current) == []
    assert committed(name) == current, f"docs/schemas/{name} is stale: run `make docs`"


@pytest.mark.parametrize("service", SERVICES)
def test_committed_asyncapi_is_current(service: str) -> None:
    assert json.loads((DOCS / f"asyncapi.{service}.json").read_text()) == asyncapi(service)


def test_removing_a_field_is_breaking() -> None:
    old = committed("PostPublished.v1.json")
    new = copy.deepcopy(old)
    del new["properties"]["permalink"]
    assert breaking_changes(old, new) == ["permalink: removed"]


def test_retyping_a_field_is_breaking() -> None:
    old = committed("PostDue.v1.json")
    new = copy.deepcopy(old)
    new["properties"]["attempt"] = {"type": "string"}
    assert breaking_changes(old, new) == ["attempt: type changed"]


def test_adding_a_required_field_is_breaking_and_an_optional_one_is_not() -> None:
    old = committed("PostFailed.v1.json")
    optional = copy.deepcopy(old)
    optional["properties"]["retry_hint"] = {"type": "string", "default": ""}
    assert breaking_changes(old, optional) == []
    required = copy.deepcopy(optional)
    required["required"].append("retry_hint")
    assert breaking_changes(old, required) == ["retry_hint: new required field"]


def test_nested_definitions_and_enums_are_checked() -> None:
    old = committed("AssetApproved.v1.json")
    new = copy.deepcopy(old)
    new["$defs"]["Platform"]["enum"].remove("telegram")
    del new["$defs"]["MediaRef"]["properties"]["url"]
    assert breaking_changes(old, new) == [
        "MediaRef.url: removed",
        "Platform: enum values removed: ['telegram']",
    ]
    widened = copy.deepcopy(old)
    widened["$defs"]["Platform"]["enum"].append("mastodon")
    assert breaking_changes(old, widened) == []


def test_asyncapi_lists_what_each_service_sends_and_receives() -> None:
    scheduler = asyncapi("scheduler")
    assert "send_posts_due_instagram_v1" in scheduler["operations"]
    assert "receive_assets_approved_v1" in scheduler["operations"]
    assert "send_posts_published_v1" not in scheduler["operations"]
    assert scheduler["channels"]["posts_due_x_v1"]["address"] == "posts.due.x.v1"
