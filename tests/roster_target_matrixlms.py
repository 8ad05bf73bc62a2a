"""The MatrixLMS simulator as a roster target, under a time scale: its minute, and the worker's
budget minute (``time_scale``), run ``SCALE`` times faster, so the suite's district syncs in
seconds at a budget that would take half an hour in real time."""

from __future__ import annotations

from typing import Any

import httpx

from simulators.matrixlms import DEMO_API_KEY, MatrixSimulator, SimClock
from simulators.matrixlms import create_app as matrix_app
from simulators.roster_convergence_matrixlms import READ_FUNCTIONS, calls_by_function, compare_matrixlms
from simulators.roster_projection import RosterProjection, RosterReport
from simulators.server import ThreadedServer

SCALE = 60.0


class MatrixTarget:
    """MatrixLMS at ``SCALE`` times real speed, the worker given 100 calls a (scaled) minute."""

    flow = "roster_matrixlms"
    handler = "roster_to_matrixlms"

    def __init__(self, scale: float = SCALE, flow_settings: str = "{}") -> None:
        self.scale = scale
        self.flow_settings = flow_settings  # the flow's settings, inline YAML
        self.sim = MatrixSimulator(clock=SimClock(scale=scale), examples=False)
        self.server = ThreadedServer(matrix_app(self.sim)).start()

    def system_yaml(self) -> str:
        return f"""\
      matrixlms:
        base_url: {self.server.url}
        api_key: ${{MATRIXLMS_API_KEY}}
        calls_per_minute: 100
        time_scale: {self.scale}
"""

    def environment(self) -> dict[str, str]:
        return {"MATRIXLMS_API_KEY": DEMO_API_KEY}

    def report(self, projection: RosterProjection) -> RosterReport:
        return compare_matrixlms(projection, self.sim)

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

    def close(self) -> None:
        self.server.stop()
