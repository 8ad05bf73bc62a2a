"""A local single-node Apache Kafka (KRaft) for development, tests and the demo.

The broker and its dependencies come from Maven Central through Maven, pinned to one
release that aiokafka speaks to; Maven's local repository caches them, so the second
start downloads nothing. Everything else (config, KRaft storage, logs, pid file) lives
in one data folder, and ``down`` stops exactly the broker whose pid that folder records.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from worker.errors import EdusyncError

# Kafka 3.9 is the last line with every protocol version aiokafka uses; 4.x drops some.
KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
SLF4J_VERSION = "1.7.36"
DEFAULT_DATA_DIR = Path("var/kafka")
DEFAULT_PORT = 9092
# Maven's own repository caches the jars; this folder only caches the resolved classpath.
CLASSPATH_CACHE = Path.home() / ".cache" / "edusync" / f"kafka-{KAFKA_VERSION}"
READY_MARKER = "Kafka Server started"

_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.edusync</groupId>
  <artifactId>local-kafka</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>{SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as ``random-uuid`` makes)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaLaunchError(EdusyncError, RuntimeError):
    """The local broker could not be resolved, formatted or started."""


@dataclass
class LocalKafka:
    """One local broker: its data folder and its two loopback ports."""

    data_dir: Path = DEFAULT_DATA_DIR
    port: int = DEFAULT_PORT
    controller_port: int | None = None
    host: str = "127.0.0.1"
    heap: str = "768m"
    cluster_id: str | None = None  # a fresh random one when None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if self.controller_port is None:
            # The next port by convention; another free one when something listens there (a
            # port picked as free for the broker says nothing of its neighbour).
            neighbour = self.port + 1
            self.controller_port = free_port(self.host) if _port_open(self.host, neighbour) else neighbour

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def _log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def _stdout_file(self) -> Path:
        return self.data_dir / "broker.out"

    # -- resolving the jars -------------------------------------------------------------

    def classpath(self) -> str:
        """Resolve the broker's jars with Maven (cached) and return the Java classpath."""
        maven_dir = CLASSPATH_CACHE
        cp_file = maven_dir / "classpath.txt"
        cached = _cached_classpath(cp_file)
        if cached:
            return cached
        if shutil.which("mvn") is None:
            raise KafkaLaunchError("Maven (mvn) is not on PATH; install it to fetch the Kafka broker")
        if shutil.which("java") is None:
            raise KafkaLaunchError("Java is not on PATH; the Kafka broker needs a JRE 17")
        maven_dir.mkdir(parents=True, exist_ok=True)
        # Two launchers at once (the test processes on a fresh machine) would write the same pom
        # and run Maven into the same local repository: one resolves, the other waits and reuses it.
        with (maven_dir / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cached = _cached_classpath(cp_file)
            if cached:
                return cached
            (maven_dir / "pom.xml").write_text(_POM)
            print(f"resolving Apache Kafka {KAFKA_VERSION} from Maven Central (cached after the first run)",
                  flush=True)
            proc = subprocess.run(
                ["mvn", "-q", "-B", "dependency:build-classpath", f"-Dmdep.outputFile={cp_file}"],
                cwd=maven_dir, capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0 or not cp_file.exists():
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
                raise KafkaLaunchError("Maven could not resolve the Kafka broker:\n" + "\n".join(tail))
            return cp_file.read_text().strip()

    # -- life cycle -----------------------------------------------------------------------

    def _write_config(self) -> Path:
        logs = self.data_dir / "logs"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(logs),
            "num.partitions": "1",
            # Topics come from edusync's own definitions, never from a typo.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.min.compaction.lag.ms": "0",
        }
        cfg = self.data_dir / "server.properties"
        cfg.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j.properties").write_text(_LOG4J.format(log=self._log_file))
        return cfg

    def _java(self, cp: str, *args: str) -> list[str]:
        return ["java", f"-Xmx{self.heap}", "-Xms256m", "-XX:+UseG1GC",
                f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
                "-cp", cp, *args]

    def _format(self, cp: str, cfg: Path) -> None:
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cid = self.cluster_id or new_cluster_id()
        # "--cluster-id=<id>" in one argument: a URL-safe base64 id may begin with "-", which the
        # tool's parser would otherwise read as an option (it failed one start in 64).
        proc = subprocess.run(
            self._java(cp, "kafka.tools.StorageTool", "format", f"--cluster-id={cid}", "-c", str(cfg)),
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise KafkaLaunchError("formatting KRaft storage failed:\n" + (proc.stdout + proc.stderr)[-2000:])

    def pid(self) -> int | None:
        """The pid of this folder's broker if it is alive, else None."""
        try:
            pid = int(self._pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except FileNotFoundError:
            return None
        # A recycled pid that is not our broker must never be signalled.
        if "kafka.Kafka" not in cmdline or str(self.data_dir) not in cmdline:
            return None
        return pid

    def is_up(self) -> bool:
        """True when our broker process lives and accepts connections."""
        return self.pid() is not None and _port_open(self.host, self.port)

    def up(self, timeout: float = 120.0) -> str:
        """Start the broker (or find it running) and return its bootstrap address."""
        if self.is_up():
            return self.bootstrap
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for port in (self.port, self.controller_port):
            if port is not None and _port_open(self.host, port):
                raise KafkaLaunchError(f"port {self.host}:{port} is already in use by another process")
        cp = self.classpath()
        cfg = self._write_config()
        self._format(cp, cfg)
        with self._stdout_file.open("ab") as out:
            proc = subprocess.Popen(
                self._java(cp, f"-Dedusync.data={self.data_dir}", "kafka.Kafka", str(cfg)),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # the broker outlives `edusync kafka up`
            )
        self._pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise KafkaLaunchError(
                    f"the broker exited with code {proc.returncode} during start-up:\n{self.log_tail()}"
                )
            if _port_open(self.host, self.port) and READY_MARKER in self._read_log():
                return self.bootstrap
            time.sleep(0.25)
        self.down()
        raise KafkaLaunchError(f"the broker did not become ready within {timeout:.0f}s:\n{self.log_tail()}")

    def down(self, timeout: float = 30.0) -> bool:
        """Stop this folder's broker; True if one was running."""
        pid = self.pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        self._pid_file.unlink(missing_ok=True)
        return True

    def _read_log(self) -> str:
        try:
            return self._log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the broker's logs, for error messages."""
        text = ""
        for f in (self._stdout_file, self._log_file):
            if f.exists():
                tail = f.read_text(errors="replace").splitlines()[-lines:]
                text += f"--- {f} ---\n" + "\n".join(tail) + "\n"
        return text or "(no broker log written)"


def _cached_classpath(cp_file: Path) -> str | None:
    """The classpath Maven resolved before, if every jar in it is still there."""
    if not cp_file.exists():
        return None
    cp = cp_file.read_text().strip()
    return cp if cp and all(Path(p).exists() for p in cp.split(os.pathsep)) else None


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
