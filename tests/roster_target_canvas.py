"""The Canvas simulator as a roster target (``tests/roster_env.py``'s ``RosterTarget``)."""

from __future__ import annotations

from typing import Any

import httpx

from simulators.canvas import ThrottleConfig
from simulators.roster_targets import CanvasRosterTarget

TOKEN = "roster-canvas-token"
# Generous: the suite measures the handler, not the throttle (the default leaks 10 requests/s).
GENEROUS = ThrottleConfig(capacity=1_000_000, leak_rate=100_000)
CREATED = ("user", "term", "course", "section", "enrollment")


class CanvasTarget(CanvasRosterTarget):
    """A Canvas simulator with one admin token, one account and a generous throttle."""

    def __init__(self, course_model: str = "section") -> None:
        super().__init__(TOKEN, GENEROUS, course_model)
        self.flow_settings = f"{{course_model: {course_model}}}"

    def stats(self) -> dict[str, Any]:
        """``GET /_sim/stats``: requests by kind and status, creates by SIS id."""
        data: dict[str, Any] = httpx.get(f"{self.server.url}/_sim/stats", timeout=10).json()
        return data

    def writes(self) -> int:
        """Every API request but GETs."""
        return sum(n for kind, by_status in self.stats()["requests"].items() if not kind.startswith("GET")
                   for n in by_status.values())

    def created(self) -> int:
        """Objects created (the simulator counts each create once, re-used enrolments not at all)."""
        creates = self.stats()["creates_by_vendor_guid"]
        return sum(n for entity in CREATED for n in creates.get(entity, {}).values())

    def user_names(self, sis_user_id: str) -> list[str]:
        """The sortable names' last names of the users whose login carries ``sis_user_id``."""
        with self.sim.lock:
            store = self.sim.users
            owners = {login.user_id for login in store.logins.values() if login.sis_user_id == sis_user_id}
            return [store.users[u].sortable_name.split(",")[0] for u in sorted(owners)]

    def set_faults(self, **faults: Any) -> None:
        """Faults on the Canvas API (``/_sim/faults``)."""
        httpx.post(f"{self.server.url}/_sim/faults", json=faults, timeout=10).raise_for_status()
