"""Shared pytest fixtures: the anyio backend and one real Kafka broker per test session.

Set ``KAFKA_BOOTSTRAP_SERVERS`` to use a broker that is already running; otherwise the
project's own launcher starts a KRaft broker on free loopback ports in a temp folder.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from deploy.local_kafka import LocalKafka, free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first (``pytest.mark.slow(seconds)``): with two test processes taking a file
    at a time, the short files then fill the gaps at the end instead of a long one running alone.
    (``make test`` passes ``--no-loadscope-reorder``: xdist would otherwise put the files with the
    most tests first, which are the quick ones.)"""

    def weight(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return float(marker.args[0]) if marker is not None and marker.args else 0.0

    items.sort(key=weight, reverse=True)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # aiokafka runs on asyncio only.
    return "asyncio"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a real broker for the whole session."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    broker = LocalKafka(
        data_dir=tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port()
    )
    bootstrap = broker.up()
    try:
        yield bootstrap
    finally:
        broker.down()


@pytest.fixture
def unique() -> str:
    """A short random suffix so each test has its own topics, tenants and groups."""
    return uuid.uuid4().hex[:10]
