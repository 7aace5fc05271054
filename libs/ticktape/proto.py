"""Generate proto/ from the code: one JSON Schema per event and an AsyncAPI 3 document of every
subject, its stream and its payloads. `just proto` writes it; a test fails when it drifts."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import msgspec

from ticktape import __version__, registry, subjects
from ticktape.events import EVENT_TYPES, codec, type_tag

PROTO_DIR = Path(__file__).resolve().parents[2] / "proto"


def _dump(doc: object) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _normalized(node: object) -> object:
    """The schema with every description cleaned the same way (inspect.cleandoc), whatever the
    installed msgspec did to the docstring: a library upgrade that changes nothing on the wire
    changes nothing in proto/."""
    if isinstance(node, dict):
        return {
            k: inspect.cleandoc(v) if k == "description" and isinstance(v, str) else _normalized(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_normalized(v) for v in node]
    return node


def event_schema(cls: type, version: int | None = None) -> dict[str, object]:
    """The JSON Schema of an event type; with `version`, of that older version's wire shape
    (`schemas/<tag>.v<version>.json`: what recordings made before hold, upcast at decode)."""
    schema = _normalized(msgspec.json.schema(cls))
    assert isinstance(schema, dict)
    name = type_tag(cls) if version is None else f"{type_tag(cls)}.v{version}"
    schema["$id"] = f"https://ticktape.dev/proto/schemas/{name}.json"
    schema["title"] = name
    return schema


def asyncapi() -> dict[str, object]:
    channels: dict[str, object] = {}
    operations: dict[str, object] = {}
    messages: dict[str, object] = {}
    for cls in EVENT_TYPES:
        tag = type_tag(cls)
        messages[_key(tag)] = {
            "name": tag,
            "title": cls.__name__,
            "summary": inspect.cleandoc(cls.__doc__ or "").split("\n")[0],
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {"type": "string", "description": "= event_id; JetStream de-duplication"},
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                },
            },
            "payload": {"$ref": f"schemas/{tag}.json"},
        }
    for ch in subjects.CHANNELS:
        key = _key(ch.template)
        params = re.findall(r"{(\w+)}", ch.template)
        channels[key] = {
            "address": ch.template,
            "description": ch.description,
            "x-jetstream-stream": ch.stream,
            "parameters": {p: {"description": f"{p} token ('.', '*', '>' and spaces become '_')"} for p in params},
            "messages": {
                _key(type_tag(p)): {"$ref": f"#/components/messages/{_key(type_tag(p))}"} for p in ch.payloads
            },
        }
        operations[f"publish_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"published by {ch.publisher}",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ticktape",
            "version": __version__,
            "description": "Event-sourced crypto trading platform: every subject on NATS JetStream.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:4222", "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def render() -> dict[str, str]:
    """Relative path -> file content for everything under proto/."""
    files = {f"schemas/{type_tag(cls)}.json": _dump(event_schema(cls)) for cls in EVENT_TYPES}
    for (tag, version), (shape, _) in sorted(codec.LEGACY.items()):
        files[f"schemas/{tag}.v{version}.json"] = _dump(event_schema(shape, version))
    files["asyncapi.json"] = _dump(asyncapi())
    for name, make in registry.documents().items():  # e.g. the API's openapi.json
        files[name] = _dump(make())
    files["streams.json"] = _dump(
        {
            "streams": {
                subjects.EVENTS_STREAM: list(subjects.EVENTS_STREAM_SUBJECTS),
                subjects.TRADES_STREAM: list(subjects.TRADES_STREAM_SUBJECTS),
                subjects.DLQ_STREAM: list(subjects.DLQ_STREAM_SUBJECTS),
            }
        }
    )
    return files


def main(check: bool = False, root: Path = PROTO_DIR) -> int:
    files = render()
    existing = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*.json")} if root.exists() else {}
    if check:
        drift = sorted(set(files) ^ set(existing) | {k for k in files if existing.get(k) != files[k]})
        if drift:
            print("proto/ drifted from the code; run `just proto`: " + ", ".join(drift))
            return 1
        return 0
    for rel in set(existing) - set(files):
        (root / rel).unlink()
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(files)} files to {root}")
    return 0
