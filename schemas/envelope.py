"""The CloudEvents 1.0 envelope every edusync event travels in.

Structured JSON mode of the CloudEvents Kafka protocol binding: the whole event is the record
value, the record carries ``content-type: application/cloudevents+json``, and the record key is
the event's ``subject`` (tenant/entity), so all changes to one entity share a partition and keep
their order.

The envelope is a ``msgspec.Struct`` rather than a pydantic model: it is decoded for every record
every handler reads, and msgspec validates it (types, patterns, an aware ``time``) in a third of
pydantic's time, keeping ``data`` as the raw JSON of the payload. The payload itself is validated
once, by its own pydantic model, straight from that JSON (``CloudEvent.payload``), instead of
being built into dicts first and validated from them (bench/frames measured both).
"""

from __future__ import annotations

import builtins
import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import orjson
from pydantic import BaseModel, ValidationError

CONTENT_TYPE = "application/cloudevents+json"
CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
DATA_CONTENT_TYPE = "application/json"
TYPE_PATTERN = r"^edusync\.[a-z0-9_.-]+\.v[0-9]+$"
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"

M = TypeVar("M", bound=BaseModel)
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class EnvelopeError(ValueError):
    """A Kafka record is not a valid edusync CloudEvent, or its payload is not valid for its type."""


class CloudEvent(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, gc=False, omit_defaults=True,
):
    """One change event: CloudEvents 1.0 attributes plus the ``tenant`` and ``upstreamcursor``
    extensions, and ``partitionkey`` (the CloudEvents partitioning extension) when the Kafka key is
    not the subject. ``data`` is the payload's JSON; ``payload()`` validates it as its model.
    ``type`` matches ``TYPE_PATTERN`` and ``tenant`` ``TENANT_PATTERN``."""

    specversion: Literal["1.0"]
    id: NonEmpty
    source: NonEmpty
    # The two patterns are checked by ``_Patterns``, once per distinct value: msgspec would run a
    # regex per record, two thirds of the decode time.
    type: str
    time: Annotated[datetime, msgspec.Meta(tz=True)]
    subject: NonEmpty
    datacontenttype: Literal["application/json"]
    data: msgspec.Raw
    tenant: str
    upstreamcursor: str
    # Roster rows are keyed by their section so a section's rows meet in one partition (FLOWS.md
    # decision 4); absent (omitted on the wire), the subject is the key.
    partitionkey: str | None = None

    def payload(self, model: builtins.type[M]) -> M:
        """``data`` validated as ``model`` (pydantic's ``ValidationError`` when it is not one)."""
        return model.model_validate_json(bytes(self.data))

    def data_object(self) -> dict[str, Any]:
        """``data`` as plain JSON values, for code that does not know the payload's model."""
        value = orjson.loads(bytes(self.data))
        return value if isinstance(value, dict) else {}

    def to_bytes(self) -> bytes:
        """The structured-mode record value."""
        return _ENCODER.encode(self)

    def key(self) -> bytes:
        """The Kafka record key: ``partitionkey`` if set, else the subject."""
        return (self.partitionkey or self.subject).encode()

    @classmethod
    def from_bytes(cls, value: bytes | None) -> CloudEvent:
        """Parse a record value, raising ``EnvelopeError`` with the reason."""
        if value is None:
            raise EnvelopeError("record has no value")
        try:
            event = _DECODER.decode(value)
        except msgspec.ValidationError as exc:
            raise EnvelopeError(f"record is not a valid CloudEvent: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise EnvelopeError(f"record value is not JSON: {exc}") from exc
        _PATTERNS.check(event.type, event.tenant)
        # ``data`` is checked once, by the payload's model in ``payload()``.
        return event


class _Patterns:
    """The type and tenant patterns, checked once per distinct value (there are few of each)."""

    def __init__(self, limit: int = 4096) -> None:
        self._type = re.compile(TYPE_PATTERN).match
        self._tenant = re.compile(TENANT_PATTERN).match
        self._good: set[tuple[str, str]] = set()
        self._limit = limit

    def check(self, type_: str, tenant: str) -> None:
        if (type_, tenant) in self._good:
            return
        if not self._type(type_):
            raise EnvelopeError(f"record is not a valid CloudEvent: type {type_!r} does not match {TYPE_PATTERN}")
        if not self._tenant(tenant):
            raise EnvelopeError(f"record is not a valid CloudEvent: tenant {tenant!r} does not match {TENANT_PATTERN}")
        if len(self._good) < self._limit:
            self._good.add((type_, tenant))


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(CloudEvent)
_PATTERNS = _Patterns()


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope (``data``: any object)."""
    schema = msgspec.json.schema(CloudEvent)
    envelope: dict[str, Any] = schema["$defs"]["CloudEvent"]
    envelope["properties"]["data"] = {"type": "object"}
    envelope["properties"]["type"]["pattern"] = TYPE_PATTERN
    envelope["properties"]["tenant"]["pattern"] = TENANT_PATTERN
    envelope["description"] = " ".join((CloudEvent.__doc__ or "").split())
    return envelope


def event_id(tenant: str, source: str, subject: str, version: str) -> str:
    """The deterministic id: the same upstream change always gets the same id."""
    raw = "\x1f".join((tenant, source, subject, version)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def make_event(
    *, tenant: str, source: str, type: str, subject: str, version: str,
    data: BaseModel, time: datetime | None = None, upstreamcursor: str | None = None,
    partitionkey: str | None = None,
) -> CloudEvent:
    """Build an event whose id is derived from tenant, source, subject and upstream version;
    every attribute is validated as a decoded one would be (``EnvelopeError`` otherwise)."""
    try:
        event = msgspec.convert({
            "specversion": "1.0", "datacontenttype": DATA_CONTENT_TYPE, "partitionkey": partitionkey,
            "id": event_id(tenant, source, subject, version), "source": source, "type": type,
            "time": time or datetime.now(UTC), "subject": subject,
            "data": msgspec.Raw(data.model_dump_json().encode()), "tenant": tenant,
            "upstreamcursor": upstreamcursor if upstreamcursor is not None else version,
        }, CloudEvent)
    except (msgspec.ValidationError, ValidationError) as exc:
        raise EnvelopeError(f"cannot build the event for {subject}: {exc}") from exc
    _PATTERNS.check(event.type, event.tenant)
    return event
