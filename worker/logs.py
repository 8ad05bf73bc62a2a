"""JSON logs through structlog, with secrets redacted; stdlib loggers (aiokafka, uvicorn) too."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from worker.redaction import redact


def _redact_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {k: redact(v, k) for k, v in event.items()}


def _render(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    return orjson.dumps(event, default=str).decode()


class RepeatLimiter(logging.Filter):
    """Lets a library's repeated message through once per ``window`` seconds and says how many
    copies it held back. During a broker outage aiokafka logs the same connection error hundreds
    of times a second; an on-call engineer needs one line and a count, not a flood."""

    def __init__(self, prefixes: tuple[str, ...], window: float = 10.0) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.window = window
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [since, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat inside the window; the first line after it carries the count."""
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} (repeated {int(seen[1])} more times in {self.window:.0f}s)"
        self._seen[key] = [now, 0]
        if len(self._seen) > 1000:  # messages with ids in them: forget the oldest
            self._seen.pop(next(iter(self._seen)))
        return True


def configure_logging(level: str = "info", stream: Any = None) -> None:
    """Send every log line, ours and libraries', to ``stream`` (stderr) as one JSON object."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _redact_processor, _render],
    ))
    handler.addFilter(RepeatLimiter(("aiokafka", "kafka")))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka is chatty at INFO about routine group membership.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    # httpx logs every request URL at INFO: noise, and AB Connect URLs carry a signature.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=False,
    )
