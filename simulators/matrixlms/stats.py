"""Call statistics per site for ``GET /_sim/stats``.

Every authenticated API call is recorded with its simulated time, so a benchmark can prove it
never exceeded a budget: ``windows`` is a histogram of calls per fixed window (aligned to the
epoch, ``window_seconds`` long) and ``max_calls_in_any_window`` the largest number of calls in
any rolling window of that length. Refused (rate-limited) calls are counted as calls too, and
separately. Values of personal data and keys are never recorded.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _max_in_window(times: list[float], width: float) -> int:
    """The most timestamps inside any half-open interval ``(t - width, t]``."""
    best, start = 0, 0
    for end, stamp in enumerate(times):
        while times[start] <= stamp - width:
            start += 1
        best = max(best, end - start + 1)
    return best


class SiteStats:
    """Counters of one site."""

    def __init__(self) -> None:
        self.by_function: Counter[tuple[str, int]] = Counter()
        self.call_times: list[float] = []
        self.refused_times: list[float] = []
        self.lockouts: list[dict[str, Any]] = []

    def snapshot(self, window: float) -> dict[str, Any]:
        """This site's JSON block."""
        functions: dict[str, dict[str, int]] = {}
        for (function, status), n in sorted(self.by_function.items()):
            functions.setdefault(function, {})[str(status)] = n
        buckets: Counter[int] = Counter(int(t // window) for t in self.call_times)
        refused: Counter[int] = Counter(int(t // window) for t in self.refused_times)
        histogram = [
            {"start": _iso(index * window), "calls": buckets[index], "refused": refused[index]}
            for index in sorted(buckets)
        ]
        return {
            "calls": len(self.call_times),
            "refused": len(self.refused_times),
            "admitted": len(self.call_times) - len(self.refused_times),
            "functions": functions,
            "lockouts": list(self.lockouts),
            "window_seconds": window,
            "max_calls_in_any_window": _max_in_window(sorted(self.call_times), window),
            # Simulated epoch seconds of the first and last call: the span a budget is judged over.
            "first_call": min(self.call_times) if self.call_times else None,
            "last_call": max(self.call_times) if self.call_times else None,
            "windows": histogram,
        }


class Stats:
    """Thread-safe statistics for all sites; the server thread writes, tests read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero everything."""
        with self._lock:
            self._sites: dict[str, SiteStats] = {}
            self._unauthenticated = 0

    def _site(self, site: str) -> SiteStats:
        return self._sites.setdefault(site, SiteStats())

    def record_call(self, site: str, function: str, status: int, now: float, *, refused: bool = False) -> None:
        """One authenticated call (admitted or refused) and the status it was answered with."""
        with self._lock:
            stats = self._site(site)
            stats.by_function[(function, status)] += 1
            stats.call_times.append(now)
            if refused:
                stats.refused_times.append(now)

    def record_lockout(self, site: str, scope: str, started: float, until: float) -> None:
        """A rate-limit exception that started a lockout."""
        with self._lock:
            self._site(site).lockouts.append(
                {"scope": scope, "started": _iso(started), "until": _iso(until), "seconds": until - started}
            )

    def record_unauthenticated(self) -> None:
        """A call answered 401 (it cannot be attributed to a site)."""
        with self._lock:
            self._unauthenticated += 1

    def calls(self, site: str) -> int:
        """Calls of ``site`` so far (cheap, for a benchmark sampling every second)."""
        with self._lock:
            stats = self._sites.get(site)
            return len(stats.call_times) if stats else 0

    def call_times(self, site: str) -> list[float]:
        """Simulated times of ``site``'s calls so far, in order (a benchmark's gaps between calls)."""
        with self._lock:
            stats = self._sites.get(site)
            return sorted(stats.call_times) if stats else []

    def snapshot(self, window: float, site: str | None = None) -> dict[str, Any]:
        """The JSON served by ``GET /_sim/stats`` (one site with ``?site=``)."""
        with self._lock:
            sites = {
                name: stats.snapshot(window)
                for name, stats in sorted(self._sites.items()) if site is None or name == site
            }
            return {
                "calls": sum(s["calls"] for s in sites.values()),
                "refused": sum(s["refused"] for s in sites.values()),
                "lockouts": sum(len(s["lockouts"]) for s in sites.values()),
                "unauthenticated": self._unauthenticated,
                "sites": sites,
            }
