"""Contract artifacts for downstream consumers: a JSON Schema per event, an AsyncAPI document per
service, and the check that a committed schema only ever changes additively within a version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.events import ALL_EVENTS, Event
from shared.topics import CATALOG, TopicSpec

Schema = dict[str, Any]

SERVICES = ("approval", "scheduler", "publisher", "metrics")
_ANNOTATIONS = frozenset({"title", "description", "examples", "default"})


def schema_version(cls: type[Event]) -> int:
    version = cls.model_fields["schema_version"].default
    assert isinstance(version, int)
    return version


def schema_filename(cls: type[Event]) -> str:
    return f"{cls.type_name()}.v{schema_version(cls)}.json"


def event_schemas() -> dict[str, Schema]:
    """File name -> JSON Schema of each event: what a valid message must contain."""
    return {schema_filename(cls): cls.model_json_schema(mode="validation") for cls in ALL_EVENTS}


def asyncapi(service: str) -> Schema:
    """An AsyncAPI 3.0 document of the topics `service` sends to and receives from."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in CATALOG:
        sends, receives = service in topic.producers, service in topic.consumers
        if not (sends or receives):
            continue
        channel_id = topic.name.replace(".", "_").replace("-", "_")
        channels[channel_id] = _channel(topic)
        for cls in topic.events:
            messages[cls.type_name()] = {
                "name": cls.type_name(),
                "contentType": "application/json",
                "payload": {"$ref": f"schemas/{schema_filename(cls)}"},
                "headers": {
                    "type": "object",
                    "properties": {
                        "event_type": {"type": "string", "const": cls.type_name()},
                        "schema_version": {"type": "string"},
                        "event_id": {"type": "string", "format": "uuid"},
                    },
                },
            }
        refs = [{"$ref": f"#/channels/{channel_id}/messages/{cls.type_name()}"} for cls in topic.events]
        for action, wanted in (("send", sends), ("receive", receives)):
            if wanted:
                operations[f"{action}_{channel_id}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{channel_id}"},
                    "messages": refs,
                }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"socialpub {service}",
            "version": "1.0.0",
            "description": f"Kafka topics the {service} service sends and receives. Keys and names are a public "
            "contract; schemas change only additively within a topic version.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "localhost:9092", "protocol": "kafka"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _channel(topic: TopicSpec) -> Schema:
    return {
        "address": topic.name,
        "description": f"{topic.description} Key: {topic.key}. Dead letters: {topic.name}.dlq.",
        "messages": {cls.type_name(): {"$ref": f"#/components/messages/{cls.type_name()}"} for cls in topic.events},
        "bindings": {"kafka": {"key": {"type": "string", "description": topic.key}}},
    }


def write_docs(docs_dir: Path) -> list[Path]:
    """Regenerate every artifact under docs_dir (`make docs`). Returns the files written."""
    written: list[Path] = []
    schemas_dir = docs_dir / "schemas"
    schemas_dir.mkdir(parents=True, exist_ok=True)
    for name, schema in event_schemas().items():
        written.append(_write_json(schemas_dir / name, schema))
    for service in SERVICES:
        written.append(_write_json(docs_dir / f"asyncapi.{service}.json", asyncapi(service)))
    return written


def _write_json(path: Path, data: Schema) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """What in `new` would break a consumer written against `old`: a removed field, a retyped
    field, a field that became required or stopped being required, a removed enum value or
    definition. Added optional fields, enum values and definitions are additive and allowed."""
    problems = _compare_object("", old, new)
    old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})
    for name, old_def in old_defs.items():
        if name not in new_defs:
            problems.append(f"definition {name} removed")
        else:
            problems.extend(_compare_object(f"{name}.", old_def, new_defs[name]))
    return problems


def _compare_object(prefix: str, old: Schema, new: Schema) -> list[str]:
    if "enum" in old:
        removed = set(old["enum"]) - set(new.get("enum", []))
        return [f"{prefix.rstrip('.')}: enum values removed: {sorted(removed)}"] if removed else []
    problems: list[str] = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for field, old_schema in old_props.items():
        if field not in new_props:
            problems.append(f"{prefix}{field}: removed")
            continue
        if _type_signature(old_schema) != _type_signature(new_props[field]):
            problems.append(f"{prefix}{field}: type changed")
        if field in old_required and field not in new_required:
            problems.append(f"{prefix}{field}: no longer required")
    for field in new_required - old_required:
        problems.append(f"{prefix}{field}: new required field")
    return problems


def _type_signature(schema: Any) -> Any:
    """The schema without human annotations: what a value must look like."""
    if isinstance(schema, dict):
        return {k: _type_signature(v) for k, v in schema.items() if k not in _ANNOTATIONS}
    if isinstance(schema, list):
        return [_type_signature(v) for v in schema]
    return schema
