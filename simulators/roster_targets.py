"""The roster flows' targets as the tests and the benchmark drive them: a target simulator served
on loopback, its ``systems:`` entry for a worker configuration (secrets as ``${ENV}``), the flow
and handler that write to it, and its convergence check against the projection of Illuminate.

``tests/`` and ``bench/`` subclass these with what each of them counts.
"""

from __future__ import annotations

from simulators.canvas import CanvasSimulator, ThrottleConfig
from simulators.canvas import create_app as canvas_app
from simulators.classroom import DEMO_SECRET, ClassSimulator
from simulators.classroom import create_app as class_app
from simulators.matrixlms import DEMO_API_KEY, MatrixSimulator, SimClock
from simulators.matrixlms import create_app as matrix_app
from simulators.roster_convergence_canvas import compare_canvas
from simulators.roster_convergence_class import compare_class
from simulators.roster_convergence_matrixlms import compare_matrixlms
from simulators.roster_projection import RosterProjection, RosterReport
from simulators.server import ThreadedServer


class ClassRosterTarget:
    """The Class simulator (``sim``, or one with the demo key and every scope)."""

    name = "classroom"
    flow = "roster_classroom"
    handler = "roster_to_class"

    def __init__(self, sim: ClassSimulator | None = None) -> None:
        self.sim = sim or ClassSimulator(examples=False)
        self.server = ThreadedServer(class_app(self.sim)).start()

    def system_yaml(self) -> str:
        """Its ``systems:`` entry, indented for a tenant."""
        return f"""\
      classroom:
        base_url: {self.server.url}/api/v1
        api_key: ${{CLASS_API_KEY}}
        timezone: America/Los_Angeles
"""

    def environment(self) -> dict[str, str]:
        """The secrets its entry names."""
        return {"CLASS_API_KEY": DEMO_SECRET}

    def report(self, projection: RosterProjection) -> RosterReport:
        """How it differs from ``projection``."""
        return compare_class(projection, self.sim)

    def close(self) -> None:
        """Stop its server."""
        self.server.stop()


class MatrixRosterTarget:
    """The MatrixLMS simulator with its documented limit on a clock ``scale`` times faster than
    real time; the worker's budget (``calls_per_minute``) runs on the same scale (``time_scale``)."""

    name = "matrixlms"
    flow = "roster_matrixlms"
    handler = "roster_to_matrixlms"

    def __init__(self, scale: float, calls_per_minute: int = 100) -> None:
        self.scale = scale
        self.calls_per_minute = calls_per_minute
        self.sim = MatrixSimulator(clock=SimClock(scale=scale), examples=False)
        self.server = ThreadedServer(matrix_app(self.sim)).start()

    def system_yaml(self) -> str:
        """Its ``systems:`` entry, indented for a tenant."""
        return f"""\
      matrixlms:
        base_url: {self.server.url}
        api_key: ${{MATRIXLMS_API_KEY}}
        calls_per_minute: {self.calls_per_minute}
        time_scale: {self.scale}
"""

    def environment(self) -> dict[str, str]:
        """The secrets its entry names."""
        return {"MATRIXLMS_API_KEY": DEMO_API_KEY}

    def report(self, projection: RosterProjection) -> RosterReport:
        """How it differs from ``projection``."""
        return compare_matrixlms(projection, self.sim)

    def close(self) -> None:
        """Stop its server."""
        self.server.stop()


class CanvasRosterTarget:
    """The Canvas simulator with one admin token on account 1 and the given quota."""

    name = "canvas"
    flow = "roster_canvas"
    handler = "roster_to_canvas"

    def __init__(self, token: str, throttle: ThrottleConfig, course_model: str = "section",
                 account: str = "Roster District") -> None:
        self.token = token
        self.throttle = throttle
        self.course_model = course_model
        self.sim = CanvasSimulator(tokens={token: 1}, accounts={1: account}, throttle=throttle)
        self.server = ThreadedServer(canvas_app(self.sim)).start()

    def system_yaml(self) -> str:
        """Its ``systems:`` entry, indented for a tenant."""
        return f"""\
      canvas:
        base_url: {self.server.url}
        token: ${{CANVAS_TOKEN}}
        account_id: "1"
"""

    def environment(self) -> dict[str, str]:
        """The secrets its entry names."""
        return {"CANVAS_TOKEN": self.token}

    def report(self, projection: RosterProjection) -> RosterReport:
        """How it differs from ``projection``."""
        return compare_canvas(projection, self.sim, course_model=self.course_model)

    def close(self) -> None:
        """Stop its server."""
        self.server.stop()
