"""The roster part of ``edusync demo``: a generated district in the Illuminate simulator flows into
the Class and MatrixLMS simulators and the demo's Canvas, then a stream of enrols, drops, transfers, renames and staff
changes follows live, and each target is compared with Illuminate at the end.

MatrixLMS allows 100 calls a minute here as in production, but its simulator (and the worker's
budget clock) run ``MATRIX_SCALE`` times faster, so the demo's initial sync takes seconds, not
the half hour a real site would need for this district; the summary gives both.
"""

from __future__ import annotations

import random
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from handlers.roster_to_canvas import HANDLER_NAME as CANVAS_HANDLER
from handlers.roster_to_class import HANDLER_NAME as CLASS_HANDLER
from handlers.roster_to_matrixlms import HANDLER_NAME as MATRIX_HANDLER
from simulators.canvas import CanvasSimulator
from simulators.classroom import DEMO_SECRET, ClassSimulator
from simulators.classroom import create_app as class_app
from simulators.illuminate import IlluminateSimulator
from simulators.illuminate.generator import SeedSpec
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS
from simulators.matrixlms import DEMO_API_KEY, MatrixSimulator, SimClock
from simulators.matrixlms import create_app as matrix_app
from simulators.roster_convergence_canvas import compare_canvas
from simulators.roster_convergence_class import compare_class
from simulators.roster_convergence_matrixlms import compare_matrixlms
from simulators.roster_projection import RosterProjection, RosterReport
from worker.asgi_server import ThreadedServer
from worker.flows.illuminate_changes import IlluminateChangesSettings
from worker.flows.roster_canvas import ROSTER_CANVAS
from worker.flows.roster_classroom import ROSTER_CLASSROOM
from worker.flows.roster_matrixlms import ROSTER_MATRIXLMS
from worker.metrics import Outcome, total
from worker.registry import FlowSettings, SystemSettings
from worker.shutdown import StopToken
from worker.systems.classroom import ClassConfig
from worker.systems.illuminate import IlluminateConfig
from worker.systems.matrixlms import MatrixLMSConfig

MATRIX_SCALE = 60.0
MATRIX_CALLS_PER_MINUTE = 100
HANDLERS = (CLASS_HANDLER, MATRIX_HANDLER, CANVAS_HANDLER)


@dataclass
class RosterDemo:
    """The Illuminate, Class and MatrixLMS simulators of the roster flows, served for the demo's
    lifetime; Canvas is the demo's own (one token for standards and roster, as in a district)."""

    students: int
    seed: int
    canvas: CanvasSimulator

    def __post_init__(self) -> None:
        self.illuminate = IlluminateSimulator()
        sections = max(2, self.students // 200)
        self.illuminate.seed(SeedSpec(sites=3, students=self.students, staff=max(10, self.students // 25),
                                      courses=max(3, self.students // 130), sections_per_course=sections,
                                      students_per_section=30, assessments=1, seed=self.seed))
        self.classroom = ClassSimulator(examples=False)
        self.matrix = MatrixSimulator(clock=SimClock(scale=MATRIX_SCALE), examples=False)
        self._stack = ExitStack()
        self.urls: dict[str, str] = {}

    def __enter__(self) -> RosterDemo:
        for name, app in (("illuminate", self.illuminate.app), ("classroom", class_app(self.classroom)),
                          ("matrixlms", matrix_app(self.matrix))):
            self.urls[name] = self._stack.enter_context(ThreadedServer(app)).url
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def describe(self) -> str:
        """One line for the start of the demo."""
        counts = self.illuminate.district.counts()
        return (f"Illuminate simulator at {self.urls['illuminate']}: {counts['students']} students, "
                f"{counts['staff']} staff, {counts['sections']} sections, {counts['rosters']} roster rows; "
                f"Class at {self.urls['classroom']}, MatrixLMS at {self.urls['matrixlms']} "
                f"(clock x{MATRIX_SCALE:.0f})")

    def systems(self) -> dict[str, SystemSettings]:
        """The tenant's systems for the roster flows."""
        c = DEFAULT_CREDENTIALS
        return {
            "illuminate": IlluminateConfig(
                base_url=f"{self.urls['illuminate']}/live/rest_server.php", consumer_key=c.consumer_key,
                consumer_secret=SecretStr(c.consumer_secret), token=c.token, token_secret=SecretStr(c.token_secret)),
            "classroom": ClassConfig(base_url=f"{self.urls['classroom']}/api/v1", api_key=SecretStr(DEMO_SECRET),
                                     timezone="America/Los_Angeles"),
            "matrixlms": MatrixLMSConfig(base_url=self.urls["matrixlms"], api_key=SecretStr(DEMO_API_KEY),
                                         calls_per_minute=MATRIX_CALLS_PER_MINUTE, time_scale=MATRIX_SCALE),
        }

    def flows(self) -> dict[str, FlowSettings]:
        """The flows: Illuminate's change pollers, and the roster into Class and MatrixLMS."""
        # Each roster flow's own settings model, with its defaults (MatrixLMS adds the reconcile's).
        defaults = {flow.name: flow.config() for flow in (ROSTER_CLASSROOM, ROSTER_MATRIXLMS, ROSTER_CANVAS)}
        return {"illuminate_changes": IlluminateChangesSettings(poll_interval_seconds=2, score_endpoints=[]),
                **defaults}

    async def change_stream(self, stop: StopToken, interval: float) -> None:
        """Random roster changes through Illuminate's control API (its server thread owns the data)."""
        rng = random.Random(self.seed)
        kinds = ("enrol", "drop", "transfer", "rename", "new_staff", "departed_staff")
        async with httpx.AsyncClient(base_url=self.urls["illuminate"], timeout=30) as client:
            while not await stop.sleep(interval * rng.uniform(0.5, 1.5)):
                await client.post("/_sim/mutate", json={"kind": rng.choice(kinds), "count": 1,
                                                        "seed": rng.randint(0, 10**9)})

    def reports(self) -> list[RosterReport]:
        """Class, MatrixLMS and Canvas against the projection of Illuminate's current state."""
        projection = RosterProjection.of(self.illuminate.district)
        return [compare_class(projection, self.classroom), compare_matrixlms(projection, self.matrix),
                compare_canvas(projection, self.canvas)]

    def line(self) -> str:
        """Progress: each roster handler's outcomes so far."""
        parts = []
        for handler in HANDLERS:
            out = outcomes(handler)
            parts.append(f"{handler.removeprefix('roster_to_')}: applied={out['applied']:.0f} "
                         f"deferred={out['deferred']:.0f} dlq={out['dead_lettered']:.0f}")
        return "  ".join(parts)

    def summary_lines(self) -> list[str]:
        """Requests per target and what MatrixLMS's budget meant in real time."""
        matrix = self.matrix.stats.snapshot(60.0)
        calls = matrix["calls"]
        classroom = self.classroom.stats.snapshot(0)
        return [
            f"Class requests       {classroom['total']} ({classroom['class_creates']} classes created)",
            f"MatrixLMS calls      {calls} ({matrix['lockouts']} lockouts); at {MATRIX_CALLS_PER_MINUTE} calls a "
            f"minute a real site needs {calls / MATRIX_CALLS_PER_MINUTE:.1f} minutes for them",
        ]


def outcomes(handler: str) -> dict[str, float]:
    """A handler's events by outcome, from this process's metrics."""
    return {o.value: total("edusync_handler_events_total", handler=handler, outcome=o.value) for o in Outcome}
