"""A local single-node Apache Kafka (KRaft) for development, tests and the demo.

The broker and its dependencies come from Maven Central through Maven, pinned to one
release that aiokafka speaks to; Maven's local repository caches them, so the second
start downloads nothing. Everything else (config, KRaft storage, logs, pid file) lives
in one data folder, and ``down`` stops exactly the broker whose pid that folder records.

``secured=True`` adds a SASL_SSL listener (PLAIN and SCRAM-SHA-512, one user) with a CA and
server certificate made by the JDK's ``keytool`` in ``<data_dir>/tls``, so clients can be tried
against TLS and SASL without a real cluster.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import random
import secrets
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
SASL_USERNAME = "edusync"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SASL_MECHANISMS = ("PLAIN", SCRAM_MECHANISM)
# In the KRaft log folder, so it goes when the storage (and the credential it records) goes.
_SCRAM_MARKER = ".edusync-scram-users"
# The files a secured folder's tls/ holds once complete; generated together, reused together.
_TLS_FILES = ("credentials.json", "ca.p12", "ca.pem", "broker.p12", "untrusted-ca.pem")

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


class _PortTaken(Exception):
    """The broker exited because a port was taken between our check and its bind."""


_BIND_FAILURE = "Address already in use"
_BIND_ATTEMPTS = 3


@dataclass
class LocalKafka:
    """One local broker: its data folder and its two loopback ports."""

    data_dir: Path = DEFAULT_DATA_DIR
    port: int = DEFAULT_PORT
    controller_port: int | None = None
    host: str = "127.0.0.1"
    heap: str = "768m"
    cluster_id: str | None = None  # a fresh random one when None
    secured: bool = False  # add the SASL_SSL listener
    secure_port: int | None = None  # the SASL_SSL port; by default the client port + 2

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        # Ports we chose ourselves may be chosen again when the broker cannot bind them.
        self._chosen: set[str] = set()
        if self.controller_port is None:
            # The next port by convention; another free one when it cannot be bound (a port
            # picked as free for the broker says nothing of its neighbour).
            neighbour = self.port + 1
            self.controller_port = neighbour if _port_bindable(self.host, neighbour) else free_port(self.host)
            self._chosen.add("controller_port")
        if self.secured and self.secure_port is None:
            # A running broker's port, so a second `up --secured` prints the address in use.
            self.secure_port = self._running_secure_port()
        if self.secured and self.secure_port is None:
            neighbour = self.port + 2
            free = neighbour != self.controller_port and _port_bindable(self.host, neighbour)
            self.secure_port = neighbour if free else free_port(self.host)
            self._chosen.add("secure_port")

    def _choose_other_ports(self) -> bool:
        """Pick fresh free ports for the ports we chose; False when the caller chose them all."""
        for name in self._chosen:
            setattr(self, name, free_port(self.host))
        return bool(self._chosen)

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients connect to."""
        return f"{self.host}:{self.port}"

    # -- the secured listener -------------------------------------------------------------

    @property
    def secure_bootstrap(self) -> str:
        """The SASL_SSL bootstrap address (``secured=True`` only)."""
        if not self.secured or self.secure_port is None:
            raise KafkaLaunchError("this broker has no SASL_SSL listener (start it with secured=True)")
        return f"{self.host}:{self.secure_port}"

    @property
    def tls_dir(self) -> Path:
        """Where the secured mode keeps its CA, keystores and credentials."""
        return self.data_dir / "tls"

    @property
    def ca_file(self) -> Path:
        """The PEM of the CA that signed the broker's certificate, for clients to trust."""
        return self.tls_dir / "ca.pem"

    @property
    def untrusted_ca_file(self) -> Path:
        """The PEM of an unrelated CA: a client trusting only it must refuse the broker."""
        return self.tls_dir / "untrusted-ca.pem"

    @property
    def credentials_file(self) -> Path:
        """The JSON holding the SASL user's password and the keystore passwords."""
        return self.tls_dir / "credentials.json"

    @property
    def sasl_username(self) -> str:
        """The one SASL user (PLAIN and SCRAM-SHA-512)."""
        return self._credentials()["username"]

    @property
    def sasl_password(self) -> str:
        """That user's password, generated at the first secured start."""
        return self._credentials()["password"]

    def _credentials(self) -> dict[str, str]:
        try:
            data = json.loads(self.credentials_file.read_text())
        except FileNotFoundError:
            raise KafkaLaunchError(
                f"no credentials in {self.credentials_file} yet: start the broker with secured=True first"
            ) from None
        return {str(k): str(v) for k, v in data.items()}

    def _running_secure_port(self) -> int | None:
        """The SASL_SSL port in the config of this folder's running broker, if any."""
        if self.pid() is None:
            return None
        try:
            lines = (self.data_dir / "server.properties").read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            key, _, value = line.partition("=")
            if key == "listeners":
                for listener in value.split(","):
                    if listener.startswith("SASL_SSL://"):
                        return int(listener.rpartition(":")[2])
        return None

    def _ensure_tls(self) -> None:
        """Make the CA, the broker's keystore, an unrelated CA and the credentials once per folder."""
        if self.tls_dir.exists():
            missing = [f for f in _TLS_FILES if not (self.tls_dir / f).exists()]
            if missing:
                # Not mended piecemeal: the files belong together (the keystore to the CA, the
                # passwords to both), and a folder tampered with is the user's to clear.
                raise KafkaLaunchError(
                    f"{self.tls_dir} lacks {', '.join(missing)}; remove that folder and the next secured "
                    "start makes a new set (and gives the SCRAM user its new password)"
                )
            return
        keytool = _keytool_path()
        # Made in a scratch folder and renamed into place, so an interrupted start leaves no half set.
        work = self.data_dir / f"tls.tmp-{uuid.uuid4().hex[:8]}"
        work.mkdir(mode=0o700)
        try:
            creds = {
                "username": SASL_USERNAME,
                # URL-safe characters only: the password goes into JAAS and --add-scram syntax unquoted.
                "password": secrets.token_urlsafe(24),
                "keystore_password": secrets.token_urlsafe(24),
                "ca_password": secrets.token_urlsafe(24),
            }
            ca, store = creds["ca_password"], creds["keystore_password"]

            def run(*args: str) -> None:
                # The quick JIT tier only: each call is a short-lived JVM, and starts about twice as fast.
                proc = subprocess.run([keytool, "-J-XX:TieredStopAtLevel=1", *args], cwd=work,
                                      capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise KafkaLaunchError(f"keytool {args[0]} failed:\n{(proc.stdout + proc.stderr)[-2000:]}")

            # EC keys: made at once, where an RSA 2048 key took a JVM about a second.
            key = ("-keyalg", "EC", "-groupname", "secp256r1", "-validity", "3650", "-storetype", "PKCS12")
            for name, dname in (("ca", "CN=edusync local CA"), ("untrusted-ca", "CN=edusync untrusted CA")):
                run("-genkeypair", "-alias", "ca", "-dname", dname, "-ext", "bc:c", "-ext", "KU=keyCertSign,cRLSign",
                    *key, "-keystore", f"{name}.p12", "-storepass", ca)
                run("-exportcert", "-rfc", "-alias", "ca", "-keystore", f"{name}.p12", "-storepass", ca,
                    "-file", f"{name}.pem")
            # Nothing ever needs the unrelated CA's key: only its certificate, to be distrusted.
            (work / "untrusted-ca.p12").unlink()
            run("-genkeypair", "-alias", "broker", "-dname", "CN=localhost", *key,
                "-keystore", "broker.p12", "-storepass", store)
            run("-certreq", "-alias", "broker", "-keystore", "broker.p12", "-storepass", store, "-file", "broker.csr")
            run("-gencert", "-alias", "ca", "-keystore", "ca.p12", "-storepass", ca, "-infile", "broker.csr",
                "-outfile", "broker.pem", "-rfc", "-validity", "3650", "-ext", f"SAN=ip:{self.host},dns:localhost",
                "-ext", "KU=digitalSignature", "-ext", "EKU=serverAuth")
            # The CA first, so keytool can build the chain when the signed certificate comes back.
            run("-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "broker.p12",
                "-storepass", store)
            run("-importcert", "-alias", "broker", "-file", "broker.pem", "-keystore", "broker.p12",
                "-storepass", store)
            secret = work / "credentials.json"
            secret.write_text(json.dumps(creds, indent=2) + "\n")
            secret.chmod(0o600)
            work.rename(self.tls_dir)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        # A storage kept from an earlier tls/ holds the old password: set the new one once running.
        (self.data_dir / "logs" / _SCRAM_MARKER).unlink(missing_ok=True)

    def _secured_props(self) -> dict[str, str]:
        creds = self._credentials()
        user, password = creds["username"], creds["password"]
        return {
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            "listener.name.sasl_ssl.plain.sasl.jaas.config":
                f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{user}="{password}";',
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.location": str(self.tls_dir / "broker.p12"),
            "ssl.keystore.type": "PKCS12",
            # A PKCS12 store has one password for the store and its keys.
            "ssl.keystore.password": creds["keystore_password"],
            "ssl.key.password": creds["keystore_password"],
        }

    def _scram_user_arg(self) -> str:
        return f"{SCRAM_MECHANISM}=[name={self.sasl_username},password={self.sasl_password}]"

    def _add_scram_user(self, cp: str) -> None:
        """Give a storage formatted without it the SCRAM credential, through the running broker."""
        proc = subprocess.run(
            self._java(cp, "kafka.admin.ConfigCommand", "--bootstrap-server", self.bootstrap, "--alter",
                       "--entity-type", "users", "--entity-name", self.sasl_username,
                       "--add-config", f"{SCRAM_MECHANISM}=[password={self.sasl_password}]"),
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            self.down()  # half secured is worse than not started: stop it, say why
            raise KafkaLaunchError(
                f"adding the {SCRAM_MECHANISM} user to the existing storage in {self.data_dir / 'logs'} failed "
                f"(remove that folder to format it afresh):\n{(proc.stdout + proc.stderr)[-2000:]}"
            )
        (self.data_dir / "logs" / _SCRAM_MARKER).write_text(self.sasl_username + "\n")

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
        # Inter-broker traffic stays on PLAINTEXT; SASL_SSL is for clients only.
        secure = f",SASL_SSL://{self.host}:{self.secure_port}" if self.secured else ""
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
                         + secure,
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}" + secure,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
                                              + (",SASL_SSL:SASL_SSL" if self.secured else ""),
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
        if self.secured:
            props.update(self._secured_props())
        cfg = self.data_dir / "server.properties"
        cfg.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        if self.secured:
            cfg.chmod(0o600)  # it holds the passwords
        (self.data_dir / "log4j.properties").write_text(_LOG4J.format(log=self._log_file))
        return cfg

    def _java(self, cp: str, *args: str) -> list[str]:
        return ["java", f"-Xmx{self.heap}", "-Xms256m", "-XX:+UseG1GC",
                f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
                "-cp", cp, *args]

    def _format(self, cp: str, cfg: Path) -> bool:
        """Format the storage once; True when it lacks the SCRAM user secured mode needs."""
        logs = self.data_dir / "logs"
        if (logs / "meta.properties").exists():
            # Formatted earlier without secured mode: the credential can only be added once running.
            return self.secured and not (logs / _SCRAM_MARKER).exists()
        cid = self.cluster_id or new_cluster_id()
        # "--cluster-id=<id>" in one argument: a URL-safe base64 id may begin with "-", which the
        # tool's parser would otherwise read as an option (it failed one start in 64).
        args = ["kafka.tools.StorageTool", "format", f"--cluster-id={cid}", "-c", str(cfg)]
        if self.secured:
            # KRaft keeps SCRAM credentials in the metadata log; format seeds them (Kafka >= 3.5).
            args += ["--add-scram", self._scram_user_arg()]
        proc = subprocess.run(self._java(cp, *args), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise KafkaLaunchError("formatting KRaft storage failed:\n" + (proc.stdout + proc.stderr)[-2000:])
        if self.secured:
            (logs / _SCRAM_MARKER).write_text(self.sasl_username + "\n")
        return False

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

    def _ports_open(self) -> bool:
        return _port_open(self.host, self.port) and (
            not self.secured or (self.secure_port is not None and _port_open(self.host, self.secure_port))
        )

    def is_up(self) -> bool:
        """True when our broker process lives and accepts connections (on every listener asked for)."""
        return self.pid() is not None and self._ports_open()

    def up(self, timeout: float = 120.0) -> str:
        """Start the broker (or find it running) and return its (PLAINTEXT) bootstrap address."""
        if self.is_up():
            return self.bootstrap
        if self.secured and self.pid() is not None and _port_open(self.host, self.port):
            raise KafkaLaunchError(
                f"the broker in {self.data_dir} is running without SASL_SSL on {self.secure_bootstrap}; "
                "stop it (edusync kafka down) and start it again secured"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for port in (self.port, self.controller_port, self.secure_port if self.secured else None):
            if port is not None and _port_open(self.host, port):
                raise KafkaLaunchError(f"port {self.host}:{port} is already in use by another process")
        cp = self.classpath()
        if self.secured:
            self._ensure_tls()
        # A port free when checked can be taken before the broker binds it (by another
        # process's outgoing connection, in the ephemeral range): choose our own ports again.
        for attempt in range(_BIND_ATTEMPTS):
            try:
                return self._start(cp, timeout)
            except _PortTaken as taken:
                if attempt + 1 == _BIND_ATTEMPTS or not self._choose_other_ports():
                    raise KafkaLaunchError(str(taken)) from None
        raise AssertionError("unreachable")

    def _start(self, cp: str, timeout: float) -> str:
        cfg = self._write_config()
        needs_scram_user = self._format(cp, cfg)
        # The log of an earlier run in this folder already says "started": look only past it.
        log_start = self._log_size()
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
                message = f"the broker exited with code {proc.returncode} during start-up:\n{self.log_tail()}"
                if _BIND_FAILURE in self._read_log(since=log_start):
                    raise _PortTaken(message)
                raise KafkaLaunchError(message)
            if self._ports_open() and READY_MARKER in self._read_log(since=log_start):
                if needs_scram_user:
                    self._add_scram_user(cp)
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

    def _log_size(self) -> int:
        try:
            return self._log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def _read_log(self, since: int = 0) -> str:
        try:
            data = self._log_file.read_bytes()
        except FileNotFoundError:
            return ""
        # A log that rolled over since is a new file: all of it is new.
        return (data[since:] if len(data) >= since else data).decode(errors="replace")

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


def _keytool_path() -> str:
    """The JDK's keytool: on PATH, else next to the ``java`` that runs the broker."""
    found = shutil.which("keytool")
    if found:
        return found
    java = shutil.which("java")
    beside = Path(java).resolve().parent / "keytool" if java else None
    if beside is not None and beside.exists():
        return str(beside)
    raise KafkaLaunchError("keytool (part of the JDK) is not on PATH; secured mode needs it for its certificates")


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _port_bindable(host: str, port: int) -> bool:
    """True when a listener could bind the port now (connecting cannot tell: an outgoing
    connection's local port refuses a bind as much as a listener does)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM's acceptor does
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now, below the kernel's ephemeral range where it can be: a port from
    that range can be taken by any outgoing connection before the caller's server binds it."""
    low = _ephemeral_low()
    for _ in range(50):
        port = _random.randrange(_LISTEN_FLOOR, low) if low > _LISTEN_FLOOR else 0
        if port and _port_bindable(host, port):
            return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_LISTEN_FLOOR = 20000  # clear of the well-known and usual registered service ports
_random = random.SystemRandom()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
