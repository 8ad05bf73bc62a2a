"""A local Prometheus server (Debian's ``prometheus`` package) for tests and the dashboard picture:
on a free loopback port, storage in a given directory, scraping the targets every second, with
edusync's alert rules loaded."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.local_kafka import free_port

BINARY = Path("/usr/bin/prometheus")
RULES = Path(__file__).resolve().parent / "prometheus" / "edusync-alerts.yml"
JOB = "edusync"  # the job name the rules' up{} alert expects


class PrometheusServer:
    """``with PrometheusServer(tmp, ["127.0.0.1:9464"]) as prom: prom.query("up")``."""

    def __init__(self, tmp: Path, targets: list[str]) -> None:
        if not BINARY.exists():
            raise RuntimeError("the Prometheus server is missing: `make test` installs Debian's prometheus package")
        self.dir = tmp / "prometheus"
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(RULES, self.dir / RULES.name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(self.dir / RULES.name)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": targets}]}],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = self.dir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(BINARY), f"--config.file={self.dir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                 "--web.enable-lifecycle"],
                stdout=log, stderr=log,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prometheus did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """The result matrix of ``/api/v1/query_range``."""
        answer = httpx.get(f"{self.url}/api/v1/query_range",
                           params={"query": expr, "start": start, "end": end, "step": step}, timeout=30).json()
        if answer["status"] != "success":
            raise RuntimeError(f"{expr}: {answer}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def query(self, expr: str) -> dict[str, Any]:
        """The raw answer of ``/api/v1/query`` (``status`` is "error" for an expression that does not parse)."""
        answer: dict[str, Any] = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        return answer

    def series(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of an expression that must evaluate."""
        answer = self.query(expr)
        if answer["status"] != "success":
            raise RuntimeError(f"{expr}: {answer}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts, from ``/api/v1/alerts``."""
        alerts: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return alerts

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health, from ``/api/v1/rules``."""
        groups = httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]
