"""Shared pytest fixtures: the anyio backend and a real Kafka broker for the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # aiokafka runs on asyncio only.
    return "asyncio"
