"""``edusync demo`` as a child process on a given broker, its output collected, for the live
Prometheus test and the dashboard picture (both need the worker's real traffic and the URL of the
AB Connect simulator, whose ``/_sim/faults`` makes an outage)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

AB_URL = re.compile(r"AB Connect simulator at (http://[\d.]+:\d+)")
NAMESPACE = re.compile(r"Kafka namespace (\S+):")


class DemoProcess:
    """The demo with small data and changes for up to an hour; ``kill()`` ends it."""

    def __init__(self, bootstrap: str, ops_port: int, *, students: int = 150) -> None:
        self.ops_port = ops_port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "demo", "--bootstrap", bootstrap, "--ops-port", str(ops_port),
             "--duration", "3600", "--documents", "3", "--standards-per-document", "10",
             "--students", str(students)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def ab_url(self, patience: float = 120.0) -> str:
        """The AB Connect simulator's URL, once the demo has printed it."""
        deadline = time.monotonic() + patience
        while True:
            for line in list(self.lines):
                found = AB_URL.search(line)
                if found:
                    return found.group(1)
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the demo did not start its simulators:\n{self.tail()}")
            time.sleep(0.2)

    def namespace(self, patience: float = 120.0) -> str:
        """The demo run's own Kafka namespace, once it has printed it."""
        deadline = time.monotonic() + patience
        while True:
            for line in list(self.lines):
                found = NAMESPACE.search(line)
                if found:
                    return found.group(1)
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the demo did not say its Kafka namespace:\n{self.tail()}")
            time.sleep(0.2)

    def alive(self) -> bool:
        """Whether the demo still runs."""
        return self.proc.poll() is None

    def tail(self, n: int = 40) -> str:
        """Its last lines of output."""
        return "\n".join(self.lines[-n:])

    def kill(self) -> None:
        """End it (nothing of it needs a clean stop)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
