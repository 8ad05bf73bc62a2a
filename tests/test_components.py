"""Transactional ids: a deployment's handlers fence their own zombies, never another deployment's."""

from __future__ import annotations

from worker.components import handler_transactional_id


def test_handler_transactional_ids_differ_per_deployment_and_keep_the_default() -> None:
    # Deployments on the default prefix keep the id they had, so an upgrade still fences its zombie.
    assert handler_transactional_id("roster_to_class", "0") == "edusync.handler.roster_to_class.0"
    a = handler_transactional_id("roster_to_class", "0", "district-a")
    b = handler_transactional_id("roster_to_class", "0", "district-b")
    assert a != b and a.startswith("district-a.") and b.startswith("district-b.")
