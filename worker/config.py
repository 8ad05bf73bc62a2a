"""The worker's YAML configuration: pydantic models, ``${ENV}`` secrets, line-precise errors.

An error names the file, the line and the field, for example
``edusync.yaml:14: tenants[0].systems.<system>.base_url: Field required``.
Secret values come from environment variables and are registered for log redaction.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from worker.errors import ConfigurationError
from worker.flows import FLOWS
from worker.handler_frame import HandlerSettings
from worker.kafka.connection import DEFAULT_NAMESPACE, KafkaConnection
from worker.progress import PROGRESS_EVERY_SECONDS
from worker.redaction import register_secret
from worker.systems import SYSTEMS

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ConfigurationError, ValueError):
    """The configuration file is missing, unparseable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSecurity(_Strict):
    """TLS and SASL for every Kafka client the worker opens; secrets come from ``${ENV}``."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_file: FilePath | None = Field(None, description="PEM CA bundle that signed the brokers' certificates")
    cert_file: FilePath | None = Field(None, description="client certificate (PEM), for mutual TLS")
    key_file: FilePath | None = Field(None, description="its private key (PEM)")
    check_hostname: bool = True

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        if self.protocol.startswith("SASL_"):
            missing = [n for n in ("sasl_mechanism", "username", "password") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"protocol {self.protocol} needs {', '.join(missing)}")
        elif self.sasl_mechanism is not None:
            raise ValueError(f"sasl_mechanism needs a SASL_ protocol, not {self.protocol}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


def default_replica_id() -> str:
    """``EDUSYNC_REPLICA_ID``, else the host name (a Kubernetes pod's name), made id-safe."""
    raw = os.environ.get("EDUSYNC_REPLICA_ID") or socket.gethostname() or "0"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", raw)


class KafkaConfig(_Strict):
    """Where the broker is, how to reach it, and how this replica identifies itself."""

    bootstrap_servers: str = "127.0.0.1:9092"
    namespace: str = Field(DEFAULT_NAMESPACE, pattern=r"^[A-Za-z0-9_-]+$",
                           description="prefixes every topic, consumer group and transactional id")
    security: KafkaSecurity = KafkaSecurity()
    replication_factor: int = Field(1, ge=1)
    min_insync_replicas: int = Field(1, ge=1, description="of every topic; checked at start-up")
    replica_id: str = Field(default_factory=default_replica_id, pattern=r"^[A-Za-z0-9_.-]+$",
                            description="stable per replica (the pod name), unique among live ones: a restarted "
                                        "replica gets its tenant slots back; defaults to EDUSYNC_REPLICA_ID, "
                                        "else the host name")
    broker_patience_seconds: float = Field(60.0, gt=0)
    session_timeout_seconds: float = Field(
        10.0, ge=6, le=300, description="a replica silent this long loses its pollers to the others")
    consumer_group_prefix: str = Field("edusync", pattern=r"^[A-Za-z0-9_.-]+$",
                                       description="handler groups are <prefix>.<handler>")

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> KafkaConfig:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"min_insync_replicas {self.min_insync_replicas} exceeds replication_factor "
                             f"{self.replication_factor}")
        return self

    def connection(self) -> KafkaConnection:
        """What every Kafka client of this configuration connects with."""
        sec = self.security
        return KafkaConnection(
            self.bootstrap_servers, namespace=self.namespace, protocol=sec.protocol,
            sasl_mechanism=sec.sasl_mechanism, username=sec.username,
            password=None if sec.password is None else sec.password.get_secret_value(),
            ca_file=None if sec.ca_file is None else str(sec.ca_file),
            cert_file=None if sec.cert_file is None else str(sec.cert_file),
            key_file=None if sec.key_file is None else str(sec.key_file), check_hostname=sec.check_hostname,
        )


class OpsConfig(_Strict):
    """The /metrics, /healthz and /readyz endpoint."""

    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)


class RuntimeConfig(_Strict):
    """How the worker process starts, pauses and stops its components."""

    shutdown_grace_seconds: float = Field(
        25.0, gt=0, description="after SIGTERM, in-flight work may finish this long; then it is cancelled")
    paused_retry_seconds: float = Field(
        60.0, gt=0, description="a component paused by rejected credentials tries again this often")
    progress_every_seconds: float = Field(
        PROGRESS_EVERY_SECONDS, ge=0, description="a progress line this often during long walks and catch-ups")


class _Sections(_Strict):
    """Base of the systems and flows sections: a key given with no value (``<flow>:``) means
    "on, with defaults"."""

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: ({} if v is None else v) for k, v in data.items()}
        return data


def _section_model(name: str, sections: dict[str, type[BaseModel]], doc: str) -> type[BaseModel]:
    """A model with one optional field per registered system or flow."""
    fields: dict[str, Any] = {key: (model | None, None) for key, model in sections.items()}
    model: type[BaseModel] = create_model(name, __base__=_Sections, __doc__=doc, **fields)
    return model


if TYPE_CHECKING:
    SystemsConfig = BaseModel
    FlowsConfig = BaseModel
else:
    SystemsConfig = _section_model("SystemsConfig", {s.name: s.config for s in SYSTEMS},
                                   "The systems a tenant runs, one section each (worker.systems).")
    FlowsConfig = _section_model("FlowsConfig", {f.name: f.config for f in FLOWS},
                                 "The flows a tenant enables, one section each (worker.flows).")


class TenantConfig(_Strict):
    """One district: the systems it runs and the flows it enables."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    systems: SystemsConfig = Field(default_factory=SystemsConfig)
    flows: FlowsConfig = Field(default_factory=FlowsConfig)

    @classmethod
    def of(cls, tenant_id: str, *, systems: Mapping[str, BaseModel], flows: Mapping[str, BaseModel]) -> TenantConfig:
        """A tenant built in code (the demo, benchmarks, tests) rather than read from a file."""
        return cls(id=tenant_id, systems=SystemsConfig.model_validate(dict(systems)),
                   flows=FlowsConfig.model_validate(dict(flows)))


class WorkerConfig(_Strict):
    """The whole file."""

    kafka: KafkaConfig = KafkaConfig()
    ops: OpsConfig = OpsConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    log_level: str = Field("info", pattern=r"^(debug|info|warning|error)$")
    handlers: dict[str, HandlerSettings] = Field(
        default_factory=dict, description="frame settings per handler name; unlisted handlers use defaults")
    tenants: list[TenantConfig] = []

    @field_validator("tenants")
    @classmethod
    def _unique_ids(cls, tenants: list[TenantConfig]) -> list[TenantConfig]:
        seen: set[str] = set()
        for t in tenants:
            if t.id in seen:
                raise ValueError(f"tenant id {t.id!r} appears twice")
            seen.add(t.id)
        return tenants

    @field_validator("handlers")
    @classmethod
    def _known_handlers(cls, handlers: dict[str, HandlerSettings]) -> dict[str, HandlerSettings]:
        known = {name for flow in FLOWS for name in flow.handler_names}
        unknown = sorted(set(handlers) - known)
        if unknown:
            raise ValueError(f"unknown handler(s) {unknown}; known: {sorted(known)}")
        return handlers

    def handler_settings(self, name: str) -> HandlerSettings:
        """The frame settings of handler ``name``."""
        return self.handlers.get(name) or HandlerSettings()


def enabled_flows(tenant: TenantConfig) -> list[str]:
    """Names of the flows ``tenant`` enables, in registry order."""
    return [f.name for f in FLOWS if _enabled(getattr(tenant.flows, f.name, None))]


def _enabled(settings: Any) -> bool:
    return settings is not None and bool(getattr(settings, "enabled", True))


def missing_systems(config: WorkerConfig) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) for every enabled flow whose systems the tenant does not configure, or
    whose source flows it does not enable."""
    problems = []
    for i, tenant in enumerate(config.tenants):
        for flow in FLOWS:
            if not _enabled(getattr(tenant.flows, flow.name, None)):
                continue
            absent = [s.name for s in flow.systems if getattr(tenant.systems, s.name, None) is None]
            if absent:
                problems.append((("tenants", i, "flows", flow.name),
                                 f"flow {flow.name!r} needs system(s) {', '.join(absent)} under systems:"))
            off = [name for name in flow.requires if not _enabled(getattr(tenant.flows, name, None))]
            if off:
                problems.append((("tenants", i, "flows", flow.name),
                                 f"flow {flow.name!r} consumes the events of flow(s) {', '.join(off)}: "
                                 "enable them under flows: too"))
    return problems


def load_config(path: str | Path, env: dict[str, str] | None = None) -> WorkerConfig:
    """Read, interpolate and validate ``path``; raise ``ConfigError`` naming file, line and field."""
    path = Path(path)
    env = dict(os.environ) if env is None else env
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from exc
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise ConfigError(f"{path}:{line}: YAML syntax error: {exc.problem}") from exc
    lines = _line_index(node)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping")
    missing: list[str] = []
    raw = _interpolate(raw, (), env, missing, path, lines)
    if missing:  # every unset variable at once: an operator fixes them in one round
        raise ConfigError("\n".join(missing))
    try:
        config = WorkerConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(err, path, lines) for err in exc.errors())) from None
    problems = missing_systems(config)
    if problems:
        raise ConfigError("\n".join(f"{path}:{_line_of(loc, lines)}: {_dotted(loc)}: {msg}" for loc, msg in problems))
    _register_secrets(config)
    return config


def _line_index(node: yaml.Node | None, at: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each path in the YAML document (keys and list indexes) to its 1-based line."""
    if node is None:
        return {}
    index = {at: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*at, key_node.value)
            index.update(_line_index(value_node, path))
            index[path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index.update(_line_index(item, (*at, i)))
    return index


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(err: Any, path: Path, lines: dict[tuple[Any, ...], int]) -> str:
    loc = tuple(err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    return f"{path}:{_line_of(loc, lines)}: {_dotted(loc)}: {msg}"


def _interpolate(value: Any, at: tuple[Any, ...], env: dict[str, str], missing: list[str], path: Path,
                 lines: dict[tuple[Any, ...], int]) -> Any:
    """``value`` with ``${NAME}`` replaced from ``env``; each unset one is appended to ``missing``."""
    if isinstance(value, dict):
        return {k: _interpolate(v, (*at, k), env, missing, path, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*at, i), env, missing, path, lines) for i, v in enumerate(value)]
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                missing.append(f"{path}:{_line_of(at, lines)}: {_dotted(at)}: environment variable {name} is not set")
                return ""
            return env[name]
        return _ENV_REF.sub(sub, value)
    return value


def _register_secrets(model: BaseModel) -> None:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            register_secret(value.get_secret_value())
        elif isinstance(value, BaseModel):
            _register_secrets(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    _register_secrets(item)
