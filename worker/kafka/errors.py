"""Errors of the Kafka plumbing, and the broker liveness check."""

from __future__ import annotations

import anyio
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from worker.errors import EdusyncError


class BrokerUnavailableError(EdusyncError, RuntimeError):
    """The Kafka broker could not be reached for longer than the configured patience."""


async def require_broker(consumer: AIOKafkaConsumer, bootstrap: str, patience: float) -> None:
    """Return once the broker answers a metadata request; raise after ``patience`` seconds."""
    deadline = anyio.current_time() + patience
    while True:
        try:
            with anyio.fail_after(max(0.1, deadline - anyio.current_time())):
                await consumer.topics()
            return
        except (KafkaError, TimeoutError) as exc:
            if anyio.current_time() >= deadline:
                raise BrokerUnavailableError(
                    f"Kafka broker {bootstrap} unreachable for {patience:.0f}s: {exc!r}"
                ) from exc
            await anyio.sleep(1.0)


class KafkaSecurityError(BrokerUnavailableError):
    """The broker answers but refuses this client: an untrusted certificate, a rejected SASL
    password or mechanism. Waiting does not help, so the worker stops at once with this line."""
