"""The record a handler writes to its dead-letter topic."""

from __future__ import annotations

import base64
from datetime import datetime

from pydantic import BaseModel


class OriginalRecord(BaseModel):
    """Where the failed record came from, and its bytes (UTF-8 text, else base64)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: str | None
    value_encoding: str = "utf-8"
    headers: dict[str, str] = {}

    @classmethod
    def from_bytes(
        cls, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...],
    ) -> OriginalRecord:
        """Capture a Kafka record losslessly."""
        encoding, text = "utf-8", None
        if value is not None:
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                encoding, text = "base64", base64.b64encode(value).decode()
        return cls(
            topic=topic, partition=partition, offset=offset,
            key=key.decode("utf-8", "replace") if key is not None else None,
            value=text, value_encoding=encoding,
            headers={k: v.decode("utf-8", "replace") for k, v in headers},
        )

    def value_bytes(self) -> bytes | None:
        """The original value, decoded back to bytes."""
        if self.value is None:
            return None
        return base64.b64decode(self.value) if self.value_encoding == "base64" else self.value.encode()


class DeadLetter(BaseModel):
    """A permanent failure: why, after how many attempts, and the original record."""

    handler: str
    reason: str
    error_type: str
    attempts: int
    failed_at: datetime
    event_id: str | None = None
    original: OriginalRecord
