"""JSON Schema export of event types: the envelope with each payload, plus the dead letter.

The event types come from the flow registry (``worker.flows``), which the CLI passes in; a
checked-in copy in ``schemas/contracts/`` makes every contract change a visible diff.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from schemas.dead_letter import DeadLetter
from schemas.envelope import envelope_schema

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEAD_LETTER_SCHEMA = "edusync.dead-letter.json"


def event_schema(event_type: str, payload: type[BaseModel]) -> dict[str, object]:
    """The JSON Schema of one event type: the CloudEvent envelope whose ``data`` is ``payload``."""
    schema = envelope_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = f"urn:edusync:schema:{event_type}"
    schema["title"] = event_type
    properties = schema["properties"]
    properties["type"] = {"const": event_type, "type": "string"}
    data_schema = payload.model_json_schema()
    schema.setdefault("$defs", {}).update(data_schema.pop("$defs", {}))
    properties["data"] = data_schema
    return schema


def export_schemas(directory: str | Path, event_types: Mapping[str, type[BaseModel]]) -> list[Path]:
    """Write one JSON Schema per event type plus the dead letter into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for event_type, payload in sorted(event_types.items()):
        written.append(_write(out / f"{event_type}.json", event_schema(event_type, payload)))
    dead_letter_id = f"urn:edusync:schema:{DEAD_LETTER_SCHEMA.removesuffix('.json')}"
    dead_letter = {"$schema": JSON_SCHEMA_DIALECT, "$id": dead_letter_id, **DeadLetter.model_json_schema()}
    written.append(_write(out / DEAD_LETTER_SCHEMA, dead_letter))
    return written


def _write(path: Path, schema: dict[str, object]) -> Path:
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return path
