"""The CloudEvents envelope and the JSON Schema export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

from schemas.envelope import CloudEvent, EnvelopeError, event_id, make_event
from schemas.export import export_schemas
from worker.flows import event_types


class _Payload(BaseModel):
    n: int


def _event(version: str = "7") -> CloudEvent:
    return make_event(tenant="district-a", source="abconnect:partner/p1", type="edusync.test.thing.v1",
                      subject="district-a/thing/1", version=version, data=_Payload(n=1),
                      time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


def test_id_is_deterministic_and_depends_on_the_version() -> None:
    assert _event().id == _event().id == event_id("district-a", "abconnect:partner/p1", "district-a/thing/1", "7")
    assert _event("8").id != _event("7").id


def test_round_trip_in_structured_mode() -> None:
    event = _event()
    raw = json.loads(event.to_bytes())
    assert raw["specversion"] == "1.0" and raw["datacontenttype"] == "application/json"
    assert raw["tenant"] == "district-a" and raw["upstreamcursor"] == "7"
    assert raw["time"] == "2026-01-02T03:04:05Z"
    assert CloudEvent.from_bytes(event.to_bytes()) == event
    assert event.key() == b"district-a/thing/1"
    assert event.payload(_Payload).n == 1


@pytest.mark.parametrize("value, reason", [
    (None, "no value"), (b"<html>", "not JSON"), (b'{"specversion": "1.0"}', "not a valid CloudEvent"),
])
def test_bad_records_raise_envelope_error(value: bytes | None, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        CloudEvent.from_bytes(value)


def test_naive_time_is_rejected() -> None:
    raw = json.loads(_event().to_bytes())
    raw["time"] = "2026-01-02T03:04:05"
    with pytest.raises(EnvelopeError, match="timezone"):
        CloudEvent.from_bytes(json.dumps(raw).encode())


def test_schema_export_writes_the_dead_letter_and_every_registered_type(tmp_path: Path) -> None:
    written = export_schemas(tmp_path, event_types())
    names = {p.name for p in written}
    assert "edusync.dead-letter.json" in names
    assert names == {f"{t}.json" for t in event_types()} | {"edusync.dead-letter.json"}
    for path in written:
        schema = json.loads(path.read_text())
        assert schema.get("type") == "object"
