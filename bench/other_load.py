"""How busy the machine was with work other than this benchmark's own processes.

``OtherLoad`` samples, on a thread, the CPU time every core spent busy (``psutil.cpu_times``, steal
included: another guest's work) and the CPU time of this process and its descendants (live ones
through psutil, reaped ones through ``os.times``); the difference is other work. The load average
cannot tell them apart: the bench's broker and restore children count in it too.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

# Mean cores busy with other work above which a report says the machine was shared.
SHARED_CORES = 0.25


def busy_seconds() -> float:
    """CPU seconds all cores have spent on anything but idling and waiting for I/O."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0)
                 - getattr(t, "guest_nice", 0.0))  # guest time is counted in user already


def own_seconds() -> float:
    """CPU seconds of this process and its descendants, live or reaped."""
    mine = os.times()
    total = mine.user + mine.system + mine.children_user + mine.children_system
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.Error:
            continue  # gone between listing and reading: os.times has it once it is reaped
        total += t.user + t.system
    return float(total)


@dataclass(frozen=True)
class LoadSummary:
    """Other work during the run: mean and peak (over ``interval_s`` samples) cores busy."""

    seconds: float
    cores: int
    mean_other_cores: float
    peak_other_cores: float
    mean_own_cores: float
    interval_s: float

    @property
    def shared(self) -> bool:
        return self.mean_other_cores > SHARED_CORES

    def sentence(self) -> str:
        """One sentence for a report."""
        measured = (f"other processes kept {self.mean_other_cores:.2f} of the {self.cores} cores busy on average "
                    f"(peak {self.peak_other_cores:.2f} over {self.interval_s:.0f} s samples) while the bench's own "
                    f"processes used {self.mean_own_cores:.2f}")
        if self.shared:
            return f"The machine was shared with other work while this ran: {measured}."
        return f"No other load to speak of while this ran: {measured}."

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"shared": self.shared, "shared_above_cores": SHARED_CORES}


class OtherLoad:
    """Samples other work every ``interval`` seconds from ``start`` until ``stop``."""

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="other-load", daemon=True)
        self._peak = 0.0
        self._first: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float]:
        return time.monotonic(), busy_seconds(), own_seconds()

    def start(self) -> OtherLoad:
        self._first = self._now()
        self._thread.start()
        return self

    def _sample(self) -> None:
        last = self._first
        while not self._stop.wait(self.interval):
            now = self._now()
            span = now[0] - last[0]
            # A descendant that exited but is not reaped yet drops out of ``own`` for an interval:
            # skip such intervals rather than count its CPU time as other work.
            if span > 0 and now[2] >= last[2]:
                other = max(0.0, (now[1] - last[1]) - (now[2] - last[2])) / span
                self._peak = max(self._peak, min(other, float(psutil.cpu_count() or 1)))
            last = now

    def stop(self) -> LoadSummary:
        self._stop.set()
        self._thread.join()
        end = self._now()
        span = max(end[0] - self._first[0], 1e-9)
        own = end[2] - self._first[2]
        other = max(0.0, (end[1] - self._first[1]) - own)
        return LoadSummary(span, psutil.cpu_count() or 1, other / span, self._peak, own / span, self.interval)
