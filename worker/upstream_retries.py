"""Upstream retry chatter, summarised: once a minute per system, host and tenant a warning says how
many retries there were and why. The first retry of each reason in such a minute is an info line
with its error (a login page or a stalled body that a retry hid is still worth seeing); the others
are debug.

The tenant is not the HTTP client's to know (one client serves every tenant that shares a
credential), so the frames name it for the work they run: ``tenant_scope`` sets the one context
variable (``worker.metrics.current_tenant``) that also gives upstream requests their bounded
``tenant`` label.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator

import structlog

from worker.metrics import UNATTRIBUTED
from worker.metrics import current_tenant as _tenant

log = structlog.get_logger(__name__)

SUMMARY_EVERY_SECONDS = 60.0
UNKNOWN_TENANT = UNATTRIBUTED


@contextlib.contextmanager
def tenant_scope(tenants: str | Iterable[str]) -> Iterator[None]:
    """Upstream calls inside the block are attributed to ``tenants`` (a batch may span several)."""
    if isinstance(tenants, str):
        name = tenants
    else:
        names = sorted(set(tenants))
        name = ",".join(names[:3]) + (f",+{len(names) - 3}" if len(names) > 3 else "") or UNKNOWN_TENANT
    token = _tenant.set(name)
    try:
        yield
    finally:
        _tenant.reset(token)


def current_tenant() -> str:
    """The tenant the running work belongs to, or ``-``."""
    return _tenant.get()


Key = tuple[str, str, str]  # system, host, tenant


class RetrySummary:
    """Counts retries per (system, host, tenant) and logs one warning per window that had any."""

    def __init__(self, every: float = SUMMARY_EVERY_SECONDS) -> None:
        self.every = every
        self._windows: dict[Key, Counter[str]] = {}

    def record(self, system: str, host: str, reason: str, tenant: str | None = None) -> bool:
        """One retry of a request to ``host`` of ``system`` because of ``reason``; True if it is the
        first of its reason in its window."""
        key = (system, host, tenant or current_tenant())
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = Counter()
            try:
                asyncio.get_running_loop().call_later(self.every, self.flush, key)
            except RuntimeError:  # no event loop (a synchronous caller): nothing will flush later
                window[reason] += 1
                self.flush(key)
                return True
        window[reason] += 1
        return window[reason] == 1

    def flush(self, key: Key) -> None:
        """Log the window of ``key`` (if it counted anything) and start a new one on the next retry."""
        window = self._windows.pop(key, None)
        if not window:
            return
        system, host, tenant = key
        log.warning("upstream.retries", system=system, host=host, tenant=tenant, retries=sum(window.values()),
                    by_reason=dict(sorted(window.items())), window_seconds=self.every)

    def flush_all(self) -> None:
        """Log every open window now (at shutdown)."""
        for key in list(self._windows):
            self.flush(key)


SUMMARY = RetrySummary()
