"""Worker replicas as OS processes of one configuration, and what their JSON logs say they own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from worker.kafka.tenant_partitions import tenant_partition
from worker.ownership import balanced_rendezvous
from worker.topics import CONTROL_PARTITIONS


class Replica:
    """``python -m worker run`` with ``EDUSYNC_REPLICA_ID``; its log is a file of JSON lines."""

    def __init__(self, name: str, config: Path, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.config = config
        self.log = tmp / f"{name}.log"
        self.env = {**os.environ, **(env or {}), "EDUSYNC_REPLICA_ID": name}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(self.config)],
                                         env=self.env, stdout=out, stderr=out)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> float:
        """SIGKILL; returns when it happened (Unix time)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        return time.time()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def lines(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        out = []
        for raw in self.log.read_bytes().splitlines():
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(line, dict):
                out.append(line)
        return out

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def owned(self) -> list[str]:
        """The tenants of the last "pollers assigned" line, unless revoked since."""
        owned: list[str] = []
        for line in self.lines():
            if line.get("event") == "pollers assigned":
                owned = list(line.get("tenants") or [])
            elif line.get("event") == "pollers revoked":
                owned = []
        return owned if self.alive else []

    def assigned_at(self, tenant: str, after: float) -> float | None:
        """When this replica was first assigned ``tenant`` after ``after`` (log time, Unix)."""
        for line in self.lines():
            if line.get("event") == "pollers assigned" and tenant in (line.get("tenants") or []):
                at = _log_time(line)
                if at is not None and at > after:
                    return at
        return None


def _log_time(line: dict[str, Any]) -> float | None:
    from datetime import datetime

    stamp = line.get("timestamp")
    if not isinstance(stamp, str):
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def spread_tenants(prefix: str, count: int, memberships: list[list[str]]) -> list[str]:
    """``count`` tenant ids such that, under each of ``memberships`` (replica ids), every replica
    owns at least one: computed with the worker's own assignment (balanced rendezvous over the
    control topic's partitions), so a test can kill or add a replica that surely owns pollers."""
    chosen: list[str] = []
    for k in range(10_000):
        candidate = f"{prefix}{k}"
        trial = [*chosen, candidate]
        if len(trial) > count:
            break
        chosen = trial
        if len(chosen) == count:
            if all(_each_owns(chosen, members) for members in memberships):
                return chosen
            chosen = chosen[1:]  # slide on: drop the oldest and try another
    raise AssertionError("no tenant spread found")


def _each_owns(tenants: list[str], members: list[str]) -> bool:
    parts = balanced_rendezvous(range(CONTROL_PARTITIONS), members)
    return all(any(tenant_partition(t, CONTROL_PARTITIONS) in parts[m] for t in tenants) for m in members)
