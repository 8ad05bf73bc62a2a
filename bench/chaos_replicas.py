"""The worker replicas of ``bench.chaos``: ``python -m worker run --config <file>`` as separate OS
processes, one configuration for all of them, each with ``EDUSYNC_REPLICA_ID`` and ``OPS_PORT`` in
its environment (the file says ``replica_id: ${EDUSYNC_REPLICA_ID}`` and ``port: ${OPS_PORT}``).

Every start of a replica is an *incarnation* with a log file of its own
(``logs/<replica>.<n>.log``: the worker's JSON lines on stderr), so log analysis knows which
process wrote a line and when it was killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from deploy.local_kafka import free_port


@dataclass
class Incarnation:
    """One process of a replica, start to end (epoch seconds)."""

    replica: str
    index: int
    log: Path
    ops_port: int
    pid: int
    started: float
    ended: float | None = None
    how: str | None = None  # killed | terminated | exited (on its own) | left (still running at the end)
    exit_code: int | None = None
    stop_seconds: float | None = None  # SIGTERM to exit
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0

    def as_json(self, t0: float) -> dict[str, Any]:
        return {"replica": self.replica, "index": self.index, "log": str(self.log), "pid": self.pid,
                "ops_port": self.ops_port, "started": self.started - t0,
                "ended": None if self.ended is None else self.ended - t0, "how": self.how,
                "exit_code": self.exit_code, "stop_seconds": self.stop_seconds,
                "cpu_seconds": round(self.cpu_seconds, 1), "peak_rss_mb": round(self.peak_rss_mb, 1)}


@dataclass
class Replica:
    """One replica id; its incarnations over the run."""

    rid: str
    config: Path
    root: Path
    log_dir: Path
    env: dict[str, str]
    incarnations: list[Incarnation] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def current(self) -> Incarnation | None:
        return self.incarnations[-1] if self.incarnations else None

    def start(self) -> Incarnation:
        """A new process with this replica id (and a fresh ops port)."""
        index = len(self.incarnations)
        log = self.log_dir / f"{self.rid}.{index}.log"
        port = free_port()
        env = {**self.env, "EDUSYNC_REPLICA_ID": self.rid, "OPS_PORT": str(port), "PYTHONPATH": str(self.root)}
        with log.open("ab") as out:
            # cwd first on sys.path: the worker code comes from ``root`` (see --worker-ref).
            self.proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(self.config)],
                                         cwd=self.root, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        inc = Incarnation(self.rid, index, log, port, self.proc.pid, time.time())
        self.incarnations.append(inc)
        return inc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sample(self) -> None:
        """CPU time and peak RSS of the running process (kept for the report)."""
        inc = self.current
        if inc is None or not self.alive():
            return
        try:
            proc = psutil.Process(inc.pid)
            times = proc.cpu_times()
            inc.cpu_seconds = times.user + times.system
            for line in Path(f"/proc/{inc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    inc.peak_rss_mb = max(inc.peak_rss_mb, int(line.split()[1]) / 1024)
        except (psutil.Error, OSError):
            pass

    def reap(self) -> Incarnation | None:
        """The current incarnation if it exited on its own since the last look (else None)."""
        inc = self.current
        if self.proc is None or inc is None or inc.ended is not None:
            return None
        code = self.proc.poll()
        if code is None:
            return None
        inc.ended, inc.how, inc.exit_code = time.time(), "exited", code
        return inc

    def kill(self) -> Incarnation | None:
        """SIGKILL the current process; None if it was not running."""
        inc = self.current
        if self.proc is None or inc is None or not self.alive():
            return None
        self.sample()
        self.proc.send_signal(signal.SIGKILL)
        inc.ended, inc.how = time.time(), "killed"
        inc.exit_code = self.proc.wait(timeout=30)
        return inc

    def terminate(self, timeout: float) -> Incarnation | None:
        """SIGTERM and wait (at most ``timeout``, then SIGKILL); records how long it took."""
        inc = self.current
        if self.proc is None or inc is None or not self.alive():
            return None
        self.sample()
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            inc.exit_code = self.proc.wait(timeout=timeout)
            inc.how = "terminated"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            inc.exit_code = self.proc.wait(timeout=30)
            inc.how = "terminated (SIGKILL after timeout)"
        inc.stop_seconds = time.monotonic() - sent
        inc.ended = time.time()
        return inc

    def abandon(self) -> None:
        """At an error exit: kill whatever still runs, so nothing outlives the harness."""
        if self.proc is not None and self.alive():
            self.proc.kill()
            self.proc.wait(timeout=30)
            if self.current is not None and self.current.ended is None:
                self.current.ended, self.current.how = time.time(), "left"


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """The replicas' environment: this one, the secrets, no inherited replica settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("EDUSYNC_REPLICA_ID", "OPS_PORT")}
    return {**env, **extra}
