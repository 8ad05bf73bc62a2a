"""Which "Class" scopes a key holds, found without an introspection endpoint (Class has none).

Scopes are chosen per key in the admin portal (seed L17-23, B.1); a call without its scope gets
403 ``Api key scope <scope> required`` (seed L1414-1418). How the start-up check probes:

- **Read scopes** are probed with one cheap GET each. Where Class has no small read, the probe
  names an object that should not exist (``ext_class_id=edusync-scope-probe``): a 404 or 400
  then proves the scope, because a server checks a key's scope before it looks anything up (the
  order the simulator keeps, B.9.3; the seed does not state it, so this is an assumption). A 403
  means missing. ``user:read`` is probed with ``page=1&limit=1``, which needs no assumption.
- **Write scopes cannot be probed without writing.** A deliberately invalid write would answer
  400 only if Class validates after checking the scope, which is undocumented, and a mistake
  would write. They are reported as ``unverified``; the first write without its scope gets the
  403, which the client raises as ``MissingScopeError`` and the component pauses on (FLOWS.md 4.8).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from worker.clients.classroom_errors import MissingScopeError

PROBE_EXT_ID = "edusync-scope-probe"
PROBE_UUID = "00000000-0000-4000-8000-000000000000"  # a well-formed UUID no class has

# The scope each endpoint needs (seed L146-177, the "Summary of Available Endpoints").
READ_PROBES: dict[str, tuple[str, dict[str, str | int]]] = {
    "class:read": ("/classes", {"ext_class_id": PROBE_EXT_ID}),
    "enrollment:read": ("/class/enrollments", {"ext_class_id": PROBE_EXT_ID}),
    "user:read": ("/users", {"page": 1, "limit": 1}),
    "schedule:read": ("/schedules", {"class_id": PROBE_UUID}),
    "template:read": ("/templates", {"template_id": PROBE_UUID}),
    "attendance:read": ("/reporting/attendance", {"ext_class_id": PROBE_EXT_ID}),
    "metrics:read": ("/reporting/metrics", {"ext_class_id": PROBE_EXT_ID, "limit": 1}),
}
WRITE_SCOPES = frozenset({"class:write", "enrollment:write", "schedule:write", "template:write", "user:write"})
ALL_SCOPES = frozenset(READ_PROBES) | WRITE_SCOPES

# What the client's methods call: classes, enrollments and staff users (FLOWS.md 2.4 "Auth").
REQUIRED_SCOPES = frozenset({
    "class:read", "class:write", "enrollment:read", "enrollment:write", "user:read", "user:write",
})


@dataclass(frozen=True)
class ScopeCheck:
    """The start-up check's findings: read scopes ``granted`` or ``missing`` (probed), write scopes
    ``unverified`` (they cannot be probed without writing)."""

    granted: frozenset[str]
    missing: frozenset[str]
    unverified: frozenset[str]

    @property
    def ok(self) -> bool:
        """No probed scope is missing (unverified write scopes do not count)."""
        return not self.missing

    def raise_for_missing(self) -> None:
        """Raise ``MissingScopeError`` naming every missing scope, so the component pauses."""
        if self.missing:
            names = ", ".join(sorted(self.missing))
            raise MissingScopeError(f"the API key lacks scope(s) {names} (start-up check)",
                                    scope=min(self.missing), status=None)


def split_needed(needed: Iterable[str]) -> tuple[list[str], frozenset[str]]:
    """The read scopes to probe (sorted) and the write scopes that cannot be; unknown names are errors."""
    wanted = set(needed)
    unknown = sorted(wanted - ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown Class scope(s) {unknown}; known: {sorted(ALL_SCOPES)}")
    return sorted(wanted & set(READ_PROBES)), frozenset(wanted & WRITE_SCOPES)
