"""The Canvas simulator the Canvas client and simulator tests share: three tokens, one account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.canvas import CanvasSimulator, create_app
from simulators.server import ThreadedServer

ADMIN = "admin-token"
TEACHER = "teacher-token"
EXPIRED = "expired-token"


@pytest.fixture(scope="module")
def sim() -> CanvasSimulator:
    return CanvasSimulator(
        tokens={
            ADMIN: 1,
            TEACHER: {"user_id": 2, "can_manage": False},
            EXPIRED: {"user_id": 3, "expires_at": 1.0},
        },
        accounts={1: "District A"},
    )


@pytest.fixture(scope="module")
def server(sim: CanvasSimulator) -> Iterator[str]:
    with ThreadedServer(create_app(sim)) as srv:
        yield srv.url
