"""Every event type edusync publishes, with its payload model, and JSON Schema export."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.dead_letter import DeadLetter
from schemas.envelope import CloudEvent

EVENT_TYPES: dict[str, type[BaseModel]] = {}


def register(event_type: str, payload: type[BaseModel]) -> str:
    """Declare an event type and its payload model; returns the type name for use as a constant."""
    if event_type in EVENT_TYPES and EVENT_TYPES[event_type] is not payload:
        raise ValueError(f"event type {event_type} registered twice with different payloads")
    EVENT_TYPES[event_type] = payload
    return event_type


def _load_all() -> None:
    # Importing the payload modules registers their types.
    import schemas.abconnect  # noqa: F401
    from schemas import illuminate as _illuminate  # noqa: F401


def export_schemas(directory: str | Path) -> list[Path]:
    """Write one JSON Schema per event type (the envelope with its payload) plus the dead letter."""
    _load_all()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    envelope = CloudEvent.model_json_schema()
    for event_type, payload in sorted(EVENT_TYPES.items()):
        schema = json.loads(json.dumps(envelope))
        schema["$id"] = f"urn:edusync:schema:{event_type}"
        schema["title"] = event_type
        schema["properties"]["type"] = {"const": event_type, "type": "string"}
        data_schema = payload.model_json_schema()
        schema.setdefault("$defs", {}).update(data_schema.pop("$defs", {}))
        schema["properties"]["data"] = data_schema
        path = out / f"{event_type}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    path = out / "edusync.dead-letter.json"
    path.write_text(json.dumps(DeadLetter.model_json_schema(), indent=2, sort_keys=True) + "\n")
    written.append(path)
    return written
