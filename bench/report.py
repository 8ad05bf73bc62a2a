"""Helpers every benchmark report shares: the machine, spreads of repeated runs, Markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil

REPORTS_DIR = Path(__file__).resolve().parent / "reports"


@dataclass(frozen=True)
class Spread:
    """Median and range of repeated measurements."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), len(values))

    @property
    def rel_range(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        return (self.high - self.low) / self.median if self.median else 0.0

    def fmt(self, digits: int = 0, scale: float = 1.0) -> str:
        """``median (min-max)``, optionally scaled (for example to thousands)."""
        m, lo, hi = (v / scale for v in (self.median, self.low, self.high))
        return f"{m:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(kafka: str) -> dict[str, str]:
    """What a reader needs to compare this run with theirs."""
    physical = psutil.cpu_count(logical=False)
    return {
        "CPU": f"{cpu_model()}, {os.cpu_count()} logical cores ({physical or '?'} physical)",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "aiokafka": metadata.version("aiokafka"),
        "pydantic": metadata.version("pydantic"),
        "Kafka": kafka,
    }


def md_table(headers: list[str], rows: list[list[str]], align: str = "") -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r`` (default left)."""
    align = align.ljust(len(headers), "l")
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [headers, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
