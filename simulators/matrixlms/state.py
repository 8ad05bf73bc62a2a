"""The simulator's whole state: sites (one ``SiteStore`` each), keys, config, clock, rate limiter,
faults and statistics. Usable directly from tests; the control API calls the same methods.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from simulators.faults import FaultInjector
from simulators.matrixlms.clock import SimClock
from simulators.matrixlms.config import SimConfig
from simulators.matrixlms.examples import load_examples
from simulators.matrixlms.generator import SeedSpec, generate
from simulators.matrixlms.keys import DEMO_API_KEY, KeyGrant, KeyRegistry
from simulators.matrixlms.ratelimit import RateLimiter
from simulators.matrixlms.records import User
from simulators.matrixlms.render import assignment_info, class_info, fmt_time, user_info
from simulators.matrixlms.stats import Stats
from simulators.matrixlms.store import SiteStore

CUSTOM_USER_FIELDS = ("ssn",)  # the custom field of the seed's example (000:L40)


class MatrixSimulator:
    """An in-memory MatrixLMS with one or more sites.

    ``keys`` maps each accepted api_key to its ``KeyGrant`` (site, administrator); by default the
    seed's example key opens the ``demo`` site. ``examples`` loads the records behind the seed's
    example requests into every new site.
    """

    def __init__(
        self, *, keys: Mapping[str, KeyGrant | Mapping[str, Any]] | None = None, config: SimConfig | None = None,
        clock: SimClock | None = None, examples: bool = True,
    ) -> None:
        grants = {k: g if isinstance(g, KeyGrant) else KeyGrant.model_validate(dict(g))
                  for k, g in (keys or {DEMO_API_KEY: KeyGrant()}).items()}
        # Route handlers run on the server's event-loop thread while tests touch the same objects
        # from their own thread, so every call and every control operation holds this lock.
        self.lock = threading.RLock()
        self.clock = clock or SimClock()
        self.faults = FaultInjector()
        self.stats = Stats()
        self.keys = KeyRegistry(grants)
        self.examples = examples
        self._initial_config = config or SimConfig()
        self.config = self._initial_config
        self.limiter = RateLimiter(self.config.rate_limit)
        self.sites: dict[str, SiteStore] = {}
        self.reset()

    def reset(self) -> None:
        """Construction-time keys and config, clock at real time and speed, no faults, fresh sites."""
        with self.lock:
            self.clock.reset()
            self.faults.clear()
            self.stats.reset()
            self.keys.reset()
            self.config = self._initial_config
            self.limiter.configure(self.config.rate_limit)
            self.sites = {}
            for grant in self.keys.grants.values():
                self.site(grant.site)

    def site(self, name: str) -> SiteStore:
        """The site's store, created (with its administrator and, if enabled, the examples) on first use."""
        with self.lock:
            store = self.sites.get(name)
            if store is None:
                store = self.sites[name] = self._new_site(name, examples=self.examples)
            return store

    def _new_site(self, name: str, *, examples: bool) -> SiteStore:
        now = self.clock.now()
        store = SiteStore(name=name, custom_user_fields=CUSTOM_USER_FIELDS)
        if examples:
            load_examples(store, now)
        admin = User(id=store.next_id("user", store.users), first_name="Site", last_name="Administrator",
                     userid="admin", email=f"admin@{name}.example.org", administrator=True, teacher=True,
                     joined_at=now, custom={"ssn": None})
        store.users[admin.id] = admin
        store.admin_id = admin.id
        return store

    def seed(self, spec: SeedSpec, site: str = "demo", *, examples: bool | None = None) -> dict[str, int]:
        """Replace ``site``'s data with a generated district; returns the counts."""
        with self.lock:
            store = self._new_site(site, examples=self.examples if examples is None else examples)
            generate(store, spec, self.clock.now())
            self.sites[site] = store
            return store.counts()

    def configure(self, changes: Mapping[str, Any]) -> SimConfig:
        """Partial update of the switches; ``rate_limit`` is merged field by field too."""
        with self.lock:
            current = self.config.model_dump()
            merged = {**current, **changes}
            if isinstance(changes.get("rate_limit"), Mapping):
                merged["rate_limit"] = {**current["rate_limit"], **changes["rate_limit"]}
            config = SimConfig.model_validate(merged)
            if config.rate_limit != self.config.rate_limit:
                self.limiter.configure(config.rate_limit)
            self.config = config
            return config

    def add_key(self, key: str, grant: KeyGrant) -> None:
        """Accept another key (until the next reset); its site is created if new."""
        with self.lock:
            self.keys.grants[key] = grant
            self.site(grant.site)

    def snapshot(self, site: str | None = None, *, counts_only: bool = False) -> dict[str, Any]:
        """The JSON served by ``GET /_sim/state``."""
        with self.lock:
            return {
                "clock": self.clock.describe(),
                "sites": {name: self._site_snapshot(store, counts_only)
                          for name, store in sorted(self.sites.items()) if site is None or name == site},
            }

    @staticmethod
    def _site_snapshot(store: SiteStore, counts_only: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"api_enabled": store.api_enabled, "admin_id": store.admin_id,
                                "counts": store.counts()}
        if counts_only:
            return body
        body["users"] = [user_info(store.users[i], store) for i in sorted(store.users)]
        body["classes"] = [
            {**class_info(c), "description": c.description, "trashed": c.trashed, "private": c.private}
            for c in (store.classes[i] for i in sorted(store.classes))
        ]
        body["members"] = [
            {"class_id": e.class_id, "user_id": e.user_id, "unenrolled": e.unenrolled, "deactivated": e.deactivated,
             "enrolled_at": fmt_time(e.enrolled_at), "unenrolled_at": fmt_time(e.unenrolled_at)}
            for e in sorted(store.enrollments.values(), key=lambda e: (e.class_id, e.user_id))
        ]
        body["teachers"] = [
            {"class_id": cid, "user_id": uid, "coteacher": co}
            for cid, teachers in sorted(store.teachers.items()) for uid, co in teachers.items()
        ]
        body["assignments"] = [
            {**assignment_info(a, store.classes[a.class_id]), "class_id": a.class_id}
            for a in sorted(store.assignments.values(), key=lambda a: a.id)
        ]
        body["grades"] = [
            {"assignment_id": aid, "user_id": uid, "grade": g.grade, "percent": g.percent, "score": g.score,
             "grader_id": g.grader_id, "submitted_at": fmt_time(g.submitted_at)}
            for (aid, uid), g in sorted(store.grades.items())
        ]
        return body
