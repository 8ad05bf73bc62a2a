"""The MatrixLMS simulator as a roster target, under a time scale: its minute, and the worker's
budget minute (``time_scale``), run ``SCALE`` times faster, so the suite's district syncs in
seconds at a budget that would take half an hour in real time."""

from __future__ import annotations

from typing import Any

import httpx

from simulators.roster_convergence_matrixlms import READ_FUNCTIONS, calls_by_function
from simulators.roster_targets import MatrixRosterTarget

SCALE = 60.0


class MatrixTarget(MatrixRosterTarget):
    """MatrixLMS at ``SCALE`` times real speed, the worker given 100 calls a (scaled) minute."""

    def __init__(self, scale: float = SCALE, flow_settings: str = "{}") -> None:
        super().__init__(scale)
        self.flow_settings = flow_settings  # the flow's settings, inline YAML

    def calls(self) -> dict[str, int]:
        """Calls answered so far, by function."""
        return dict(calls_by_function(self.sim))

    def writes(self) -> int:
        """Calls of functions that write."""
        return sum(n for f, n in calls_by_function(self.sim).items() if f not in READ_FUNCTIONS)

    def stats(self) -> dict[str, Any]:
        """The simulator's statistics: calls, refusals, lockouts, busiest minute."""
        return httpx.get(f"{self.server.url}/_sim/stats", timeout=10).json()  # type: ignore[no-any-return]

    def set_faults(self, **faults: Any) -> None:
        """Faults on the MatrixLMS API (``/_sim/faults``)."""
        httpx.post(f"{self.server.url}/_sim/faults", json=faults, timeout=10).raise_for_status()
