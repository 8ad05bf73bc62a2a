"""Kafka for the read-only commands (``status``, ``dlq``): reachable within a short wait, or one error line."""

from __future__ import annotations

import logging

from worker.config import WorkerConfig
from worker.runtime import wait_for_kafka

# An operator at a terminal wants the answer soon; the worker's own patience (60 s) suits a restart.
CLI_PATIENCE_SECONDS = 10.0


async def require_kafka(config: WorkerConfig) -> None:
    """Return once the broker answers; raise ``BrokerUnavailableError`` (one line) otherwise.

    aiokafka's own connection errors are silenced: the command reports the outcome itself, once."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    await wait_for_kafka(config.kafka.connection(), min(config.kafka.broker_patience_seconds, CLI_PATIENCE_SECONDS))
