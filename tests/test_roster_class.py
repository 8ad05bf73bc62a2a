"""The roster flow into Class: a key without a scope pauses the handler. (Sync, renames, change
streams and replay of every target are in ``test_roster_targets.py``.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from simulators.classroom import ALL_SCOPES
from tests.roster_env import ClassTarget, RosterEnv
from worker.tenant_slots import handler_component_name

pytestmark = pytest.mark.slow(20)

HANDLER = "roster_to_class"


def test_a_class_key_without_a_write_scope_pauses_the_handler_and_dead_letters_nothing(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    scopes = [s for s in ALL_SCOPES if s != "class:write"]
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[ClassTarget(scopes)])
    try:
        env.start_worker()
        deadline = time.monotonic() + 120
        while env.metric("edusync_component_paused", component=handler_component_name(HANDLER, env.tenant)) < 1:
            assert time.monotonic() < deadline, env.log_tail()
            time.sleep(1)
        assert env.dead_letters(HANDLER) == []
        assert isinstance(target := env.targets[0], ClassTarget) and target.sim.store.classes == {}
        assert env.stop_worker() == 0
    finally:
        env.close()
