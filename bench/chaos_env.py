"""The tenants of ``bench.chaos``: each district gets its own five simulators on loopback threads
(Illuminate, AB Connect, Canvas, Class, MatrixLMS), its ``tenants:`` entry for the one worker
configuration, and the checks of every target against its source's ground truth.

- roster: ``simulators/roster_convergence_{class,matrixlms,canvas}.py`` against the projection of
  the tenant's Illuminate district;
- standards: ``simulators/standards_convergence.py`` (Canvas outcomes against AB Connect);
- Canvas audit: every grade-change event of the followed gradebook courses and every course event
  of the account, as the Canvas simulator's audit store holds them, published (by Canvas event id)
  on ``edusync.canvas.grade-changes`` / ``edusync.canvas.course-events`` (checked by the caller,
  who reads the topics; ``audit_truth`` gives the ids).

The gradebook courses the audit pollers follow are made through Canvas's REST API before the
worker starts (SIS ids ``chaos-gb-*``, outside the roster flow's ``edusync-`` prefix, so the roster
check leaves them alone); grade changes are then made as a teacher would, in-process under the
simulator's lock (what ``POST /_sim/grades`` does, without an HTTP round trip per grade).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from bench.chaos_faults import BurstThrottle, SystemControl, control_for
from simulators.abconnect import ABConnectSimulator, SeedRequest
from simulators.abconnect import create_app as ab_app
from simulators.canvas import ThrottleConfig
from simulators.canvas.audit_store import Actor
from simulators.canvas.submission_store import GradeChange
from simulators.classroom import DEMO_SECRET
from simulators.faults import FaultInjector
from simulators.illuminate import IlluminateSimulator, SeedSpec
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS
from simulators.matrixlms import DEMO_API_KEY
from simulators.roster_projection import RosterProjection, RosterReport
from simulators.roster_targets import CanvasRosterTarget, ClassRosterTarget, MatrixRosterTarget
from simulators.server import ThreadedServer
from simulators.standards_convergence import compare

# A school day inside the generated session, so every run sees the same districts.
ILLUMINATE_DAY = date(2024, 2, 1)
PARTNER, PARTNER_KEY = "chaos-district", "chaos-partner-key-0123456789"
CANVAS_TOKEN = "chaos-canvas-token-0123456789"
# Canvas publishes no throttle numbers; the bucket the demo and the other benches use.
CANVAS_THROTTLE = ThrottleConfig(capacity=700, leak_rate=200)
GRADER_ID = 9001


@dataclass(frozen=True)
class Sizes:
    """What each tenant holds at the start."""

    students: int = 400
    staff: int = 24
    courses: int = 6
    sections_per_course: int = 6
    students_per_section: int = 25
    ab_documents: int = 4
    ab_standards: int = 100
    ab_sections: int = 4
    gb_courses: int = 3
    gb_students: int = 12
    gb_assignments: int = 3

    def district(self, seed: int) -> SeedSpec:
        """The Illuminate seed (one assessment: the score poller has something to follow)."""
        return SeedSpec(sites=3, students=self.students, staff=self.staff, courses=self.courses,
                        sections_per_course=self.sections_per_course, students_per_section=self.students_per_section,
                        assessments=1, seed=seed)


@dataclass
class Gradebook:
    """One followed Canvas course: its id, assignments and students."""

    course_id: int
    assignments: list[int]
    students: list[int]


@dataclass
class TargetCheck:
    """One target of one tenant against its source."""

    tenant: str
    target: str
    ok: bool
    summary: str
    differences: dict[str, int]
    examples: dict[str, list[str]]

    def as_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "target": self.target, "ok": self.ok, "summary": self.summary,
                "differences": self.differences, "examples": self.examples}


def _roster_check(tenant: str, report: RosterReport) -> TargetCheck:
    problems = {k: v for k, v in report.problems.items() if v}
    return TargetCheck(tenant, f"roster -> {report.target}", report.ok, report.summary(),
                       {k: len(v) for k, v in problems.items()}, {k: v[:3] for k, v in problems.items()})


class ChaosTenant:
    """One district's five simulators, served until ``close``."""

    def __init__(self, tenant_id: str, index: int, sizes: Sizes, seed: int, matrix_scale: float,
                 matrix_calls_per_minute: int) -> None:
        self.id = tenant_id
        self.index = index
        self.sizes = sizes
        self.rng = random.Random(seed * 7919 + index)
        self.illuminate = IlluminateSimulator(clock=ILLUMINATE_DAY)
        self.illuminate.seed(sizes.district(seed * 100 + index))
        self.ill_throttle = BurstThrottle(self.illuminate.app)
        self.ill_server = ThreadedServer(self.ill_throttle).start()
        self.ab = ABConnectSimulator({PARTNER: PARTNER_KEY})
        self.ab.seed(SeedRequest(documents=sizes.ab_documents, standards_per_document=sizes.ab_standards,
                                 sections_per_document=sizes.ab_sections, seed=seed * 100 + index))
        self.ab_faults = FaultInjector()
        self.ab_server = ThreadedServer(ab_app(self.ab, self.ab_faults)).start()
        self.canvas = CanvasRosterTarget(CANVAS_TOKEN, CANVAS_THROTTLE, account=f"District {tenant_id}")
        self.classroom = ClassRosterTarget()
        self.matrix = MatrixRosterTarget(matrix_scale, matrix_calls_per_minute)
        self.gradebooks: list[Gradebook] = []
        self.grades_made = 0

    # -- set-up ------------------------------------------------------------------------------------

    def make_gradebooks(self) -> None:
        """The followed courses, their students and assignments, through Canvas's REST API."""
        sizes = self.sizes
        headers = {"Authorization": f"Bearer {CANVAS_TOKEN}"}
        with httpx.Client(base_url=self.canvas.server.url, headers=headers, timeout=30) as http:
            def post(path: str, data: dict[str, str]) -> Any:
                response = http.post(path, data=data)
                response.raise_for_status()
                return response.json()

            students = [post("/api/v1/accounts/1/users", {
                "user[name]": f"Gradebook Student {i}", "pseudonym[unique_id]": f"chaos-gb-{self.id}-{i}",
                "pseudonym[sis_user_id]": f"chaos-gb-{self.id}-{i}"})["id"] for i in range(sizes.gb_students)]
            for c in range(sizes.gb_courses):
                course = post("/api/v1/accounts/1/courses", {
                    "course[name]": f"Gradebook {c}", "course[sis_course_id]": f"chaos-gb-course-{c}", "offer": "true"})
                # A section of our own, with a SIS id (an enrolment without one makes Canvas's default
                # section, which has none, and the roster check counts objects without SIS ids).
                section = post(f"/api/v1/courses/{course['id']}/sections", {
                    "course_section[name]": f"Gradebook {c}",
                    "course_section[sis_section_id]": f"chaos-gb-section-{c}"})
                for student in students:
                    post(f"/api/v1/sections/{section['id']}/enrollments", {
                        "enrollment[user_id]": str(student), "enrollment[type]": "StudentEnrollment",
                        "enrollment[enrollment_state]": "active"})
                assignments = [post(f"/api/v1/courses/{course['id']}/assignments", {
                    "assignment[name]": f"Assignment {a}", "assignment[points_possible]": "100",
                    "assignment[grading_type]": "points"})["id"] for a in range(sizes.gb_assignments)]
                self.gradebooks.append(Gradebook(int(course["id"]), [int(a) for a in assignments],
                                                 [int(s) for s in students]))

    # -- the worker's view -------------------------------------------------------------------------

    def urls(self) -> dict[str, str]:
        """Each system's simulator base URL (its control API is ``<url>/_sim/``)."""
        return {"illuminate": self.ill_server.url, "abconnect": self.ab_server.url, "canvas": self.canvas.server.url,
                "classroom": self.classroom.server.url, "matrixlms": self.matrix.server.url}

    def controls(self) -> dict[str, SystemControl]:
        """The throttling-burst switches of each system."""
        return {system: control_for(system, url, self.ill_throttle, CANVAS_THROTTLE.model_dump())
                for system, url in self.urls().items()}

    def tenant_yaml(self, opts: TenantFlowOptions) -> str:
        """The tenant's entry under ``tenants:`` (secrets as ``${ENV}``, shared by every tenant)."""
        c = DEFAULT_CREDENTIALS
        u = self.urls()
        courses = ", ".join(f'"{g.course_id}"' for g in self.gradebooks)
        replicas = f"\n        replicas: {opts.matrix_replicas}" if opts.matrix_replicas else ""
        return f"""\
  - id: {self.id}
    systems:
      illuminate:
        base_url: {u['illuminate']}/live/rest_server.php
        consumer_key: {c.consumer_key}
        consumer_secret: ${{ILL_CONSUMER_SECRET}}
        token: {c.token}
        token_secret: ${{ILL_TOKEN_SECRET}}
      abconnect:
        base_url: {u['abconnect']}/rest/v4.1
        partner_id: {PARTNER}
        partner_key: ${{AB_PARTNER_KEY}}
      canvas:
        base_url: {u['canvas']}
        token: ${{CANVAS_TOKEN}}
        account_id: "1"
      classroom:
        base_url: {u['classroom']}/api/v1
        api_key: ${{CLASS_API_KEY}}
        timezone: America/Los_Angeles
      matrixlms:
        base_url: {u['matrixlms']}
        api_key: ${{MATRIXLMS_API_KEY}}
        calls_per_minute: {self.matrix.calls_per_minute}
        time_scale: {self.matrix.scale}{replicas}
    flows:
      standards:
        poll_interval_seconds: {opts.standards_poll}
        reconcile_interval_seconds: {opts.standards_reconcile}
      illuminate_changes:
        poll_interval_seconds: {opts.illuminate_poll}
        max_delete_share: {opts.max_delete_share}
      roster_classroom: {{}}
      roster_matrixlms:
        reconcile_interval_seconds: {opts.matrix_reconcile}
        reconcile_slices: {opts.matrix_reconcile_slices}
        reconcile_quiet_seconds: {opts.matrix_reconcile_quiet}
      roster_canvas: {{}}
      canvas_audit:
        lag_seconds: {opts.audit_lag}
        overlap_seconds: {opts.audit_overlap}
        initial_lookback_seconds: 3600
        course_events_interval_seconds: {opts.audit_poll}
        grade_changes_interval_seconds: {opts.audit_poll}
        grade_course_ids: [{courses}]
"""

    # -- changes -----------------------------------------------------------------------------------

    def grade(self, count: int) -> int:
        """``count`` teacher grade changes in the followed courses; how many changed a grade (an
        unchanged grade writes no audit event, so each draw picks a grade different from the cell's)."""
        made = 0
        sim = self.canvas.sim
        with sim.lock:
            sim.accounts.add_user(GRADER_ID)
            for _ in range(count):
                book = self.rng.choice(self.gradebooks)
                course = sim.courses.resolve(str(book.course_id), include_deleted=True)
                assignment = sim.assignments.get(course, str(self.rng.choice(book.assignments)))
                student = self.rng.choice(book.students)
                before = sim.audit.counts()["grade_change_events"]
                for _attempt in range(5):
                    grade = str(self.rng.randint(0, 100))  # points out of 100
                    actor = Actor(GRADER_ID, "manual", request_id=str(uuid.uuid4()))
                    sim.submissions.grade(assignment, student, GradeChange(grade, None), actor)
                    if sim.audit.counts()["grade_change_events"] > before:
                        made += 1
                        break
        self.grades_made += made
        return made

    # -- ground truth and checks -------------------------------------------------------------------

    def audit_truth(self, settled_before: datetime | None = None) -> dict[str, set[str]]:
        """Canvas event ids the audit pollers must publish: grade changes of the followed courses
        and course events of the account, made before ``settled_before`` (default: now)."""
        until = settled_before or datetime.now(UTC)
        followed = {g.course_id for g in self.gradebooks}
        sim = self.canvas.sim
        with sim.lock:
            grades = {e.id for e in sim.audit.grade_events(lambda e: e.course_id in followed) if e.created_at < until}
            courses = {e.id for e in sim.audit.course_events(lambda e: 1 in e.account_ids) if e.created_at < until}
        return {"grade_changes": grades, "course_events": courses}

    def check_targets(self) -> list[TargetCheck]:
        """Class, MatrixLMS and Canvas against Illuminate; Canvas outcomes against AB Connect."""
        projection = RosterProjection.of(self.illuminate.district)
        checks = [_roster_check(self.id, t.report(projection)) for t in (self.classroom, self.matrix, self.canvas)]
        standards = compare(self.ab.snapshot(PARTNER), self.canvas.sim.snapshot())
        kinds = ("missing", "extra", "duplicates", "wrong_text", "misplaced", "missing_groups", "extra_groups",
                 "wrong_group_titles")
        diffs = {k: len(getattr(standards, k)) for k in kinds if getattr(standards, k)}
        checks.append(TargetCheck(self.id, "standards -> canvas", standards.ok, standards.summary(), diffs,
                                  {k: list(getattr(standards, k))[:3] for k in diffs}))
        return checks

    def created_twice(self) -> dict[str, Any]:
        """Target objects created more than once, from the simulators' own create counts."""
        class_creates = self.classroom.sim.stats.snapshot(self.classroom.sim.faults.injected)
        twice_classes = sorted(k for k, n in class_creates["class_creates_by_ext_class_id"].items() if n > 1)
        canvas = self.canvas.sim.stats.snapshot()
        twice_canvas = {k: v for k, v in canvas["duplicate_vendor_guids"].items() if v}
        with self.matrix.sim.lock:
            store = self.matrix.sim.site("demo")
            names = [c.name for c in store.classes.values()]
        twice_matrix = sorted({n for n in names if names.count(n) > 1})
        return {"classroom_classes": twice_classes, "canvas": twice_canvas, "matrixlms_classes": twice_matrix}

    def stats(self) -> dict[str, Any]:
        """Request counts, throttled and faulted answers per simulator."""
        ab = self.ab.stats()
        canvas = self.canvas.sim.stats.snapshot()
        classroom = self.classroom.sim.stats.snapshot(self.classroom.sim.faults.injected)
        matrix = self.matrix.sim.stats.snapshot(60.0, "demo")["sites"].get("demo", {})
        return {
            "illuminate": {"faults_injected": self.illuminate.faults.injected,
                           "throttled": self.ill_throttle.refused},
            "abconnect": {"requests": ab["requests"], "throttled": ab["throttled"],
                          "faults_injected": self.ab_faults.injected},
            "canvas": {"requests": canvas["total"], "throttled": canvas["throttled"],
                       "faults_injected": self.canvas.sim.faults.injected},
            "classroom": {"requests": classroom["total"], "throttled": classroom["throttled"],
                          "faults_injected": classroom["faults_injected"], "class_creates": classroom["class_creates"]},
            "matrixlms": {"calls": matrix.get("calls", 0), "refused": matrix.get("refused", 0),
                          "lockouts": len(matrix.get("lockouts", [])),
                          "faults_injected": self.matrix.sim.faults.injected},
            "grades_made": self.grades_made,
        }

    def counts(self) -> dict[str, Any]:
        """What the sources hold now."""
        ab = self.ab.snapshot(PARTNER)
        return {"illuminate": self.illuminate.district.counts(),
                "abconnect_standards": sum(1 for s in ab["standards"] if not s["deleted"]),
                "canvas_audit": self.canvas.sim.audit.counts()}

    def close(self) -> None:
        for server in (self.ill_server, self.ab_server):
            server.stop()
        for target in (self.canvas, self.classroom, self.matrix):
            target.close()


@dataclass(frozen=True)
class TenantFlowOptions:
    """Poll intervals and reconcile settings every tenant's flows get."""

    illuminate_poll: float = 5.0
    standards_poll: float = 1.0
    standards_reconcile: float = 300.0
    # Each poll re-reads the overlap: at ~8 grade changes/s per course a 30 s overlap made the
    # Canvas simulators render ~5,000 audit events a second for nothing.
    audit_poll: float = 5.0
    audit_lag: float = 2.0
    audit_overlap: float = 5.0
    matrix_reconcile: float = 240.0
    matrix_reconcile_slices: int = 24
    matrix_reconcile_quiet: float = 20.0
    matrix_replicas: int | None = 3
    # The stream's drops and transfers remove a large share of a small district's roster rows
    # between two consistent walks; they are real deletions, not the upstream accident the guard
    # (default 0.1) is for.
    max_delete_share: float = 1.0


def environment() -> dict[str, str]:
    """The secrets every tenant's entry names."""
    c = DEFAULT_CREDENTIALS
    return {"ILL_CONSUMER_SECRET": c.consumer_secret, "ILL_TOKEN_SECRET": c.token_secret,
            "AB_PARTNER_KEY": PARTNER_KEY, "CANVAS_TOKEN": CANVAS_TOKEN, "CLASS_API_KEY": DEMO_SECRET,
            "MATRIXLMS_API_KEY": DEMO_API_KEY}


def settle_horizon(lag_seconds: float) -> datetime:
    """Audit events older than this must be published by now (the window's lag plus a margin)."""
    return datetime.now(UTC) - timedelta(seconds=lag_seconds + 5.0)
