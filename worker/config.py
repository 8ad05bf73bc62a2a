"""The worker's YAML configuration: pydantic models, ``${ENV}`` secrets, line-precise errors.

An error names the file, the line and the field, for example
``edusync.yaml:14: tenants[0].canvas.base_url: Input should be a valid URL``.
Secret values come from environment variables and are registered for log redaction.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from worker.redaction import register_secret

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    """The configuration file is missing, unparseable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaConfig(_Strict):
    """Where the broker is and how this replica identifies itself."""

    bootstrap_servers: str = "127.0.0.1:9092"
    replication_factor: int = Field(1, ge=1)
    replica_id: str = Field("0", pattern=r"^[A-Za-z0-9_.-]+$",
                            description="stable per replica: its transactional ids fence its own zombies")
    broker_patience_seconds: float = Field(60.0, gt=0)
    consumer_group_prefix: str = Field("edusync", pattern=r"^[A-Za-z0-9_.-]+$",
                                       description="handler groups are <prefix>.<handler>")


class OpsConfig(_Strict):
    """The /metrics, /healthz and /readyz endpoint."""

    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)


class ABConnectConfig(_Strict):
    """One AB Connect partner account."""

    base_url: str
    partner_id: str
    partner_key: SecretStr
    user_id: str | None = None
    start_seq: int = Field(0, ge=0, description="seq to start from when no cursor is stored")
    poll_interval_seconds: float = Field(5.0, gt=0, description="doubles up to 4x while the feed is quiet")


class CanvasConfig(_Strict):
    """One Canvas instance and the account edusync writes to."""

    base_url: str
    token: SecretStr
    account_id: str = "1"


IlluminateEntity = Literal["students", "staff", "sections", "rosters", "enrollments", "courses", "terms"]
IlluminateScoreEndpoint = Literal[
    "AssessmentAggregateStudentResponses",
    "AssessmentAggregateStudentResponsesGroup",
    "AssessmentAggregateStudentResponsesStandard",
]
ILLUMINATE_SNAPSHOT_ENTITIES: tuple[IlluminateEntity, ...] = get_args(IlluminateEntity)
# The whole-assessment aggregate is what the scores flow needs; Group and Standard are opt-in
# because they return two and three rows per score.
_DEFAULT_SCORE_ENDPOINTS: tuple[IlluminateScoreEndpoint, ...] = ("AssessmentAggregateStudentResponses",)


class IlluminateConfig(_Strict):
    """One Illuminate instance (OAuth 1 consumer plus pre-issued user token) and how it is polled.

    Snapshot pollers walk every page of each entity and diff against ``edusync._snapshots``;
    score pollers use ``modified_after`` with an overlap plus a periodic reconciliation
    (api/illuminate.md section 6.2).
    """

    base_url: str
    consumer_key: str
    consumer_secret: SecretStr
    token: str
    token_secret: SecretStr
    poll_interval_seconds: float = Field(300.0, gt=0)
    snapshot_entities: list[IlluminateEntity] = Field(
        default_factory=lambda: list(ILLUMINATE_SNAPSHOT_ENTITIES),
        description="entities polled by snapshot diff, one poller each")
    snapshot_scope: Literal["session", "today"] = Field(
        "session", description="session: query the whole session so end-dated rows stay visible (ref 6.2 A.1); "
        "today: the API's default scope, where an end-dated row vanishes and becomes a delete")
    session_start: date | None = Field(None, description="override the session range (else from /Api/Terms/)")
    session_end: date | None = None
    max_delete_share: float = Field(
        0.1, gt=0, le=1, description="hold back every deletion of an entity when more than this share would go")
    deletion_guard_min_count: int = Field(
        10, ge=0, description="deletions up to this many are never held back (small entities such as terms)")
    score_endpoints: list[IlluminateScoreEndpoint] = Field(
        default_factory=lambda: list(_DEFAULT_SCORE_ENDPOINTS),
        description="modified_after endpoints polled, one poller and watermark each")
    overlap_days: int = Field(1, ge=0, le=30, description="modified_after = watermark - overlap_days")
    scores_reconcile_every: int = Field(
        96, ge=1, description="after this many incremental walks, walk every assessment in full (no "
        "modified_after) to find deleted scores")
    district_timezone: str = Field("UTC", description="IANA zone of the district: the watermark is a local date")
    page_limit: int = Field(1000, ge=1, le=1000, description="records per page (documented max 1000)")
    students2_page_limit: int = Field(
        2000, ge=1, le=30000, description="records per Students2 page (max 30,000; larger pages cost memory)")

    @field_validator("snapshot_entities", "score_endpoints")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("each entry may appear once")
        return values

    @field_validator("district_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _session_pair(self) -> IlluminateConfig:
        if (self.session_start is None) != (self.session_end is None):
            raise ValueError("session_start and session_end go together")
        if self.session_start and self.session_end and self.session_start > self.session_end:
            raise ValueError("session_start is after session_end")
        return self


class TenantConfig(_Strict):
    """One district and the systems it runs."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    abconnect: ABConnectConfig | None = None
    canvas: CanvasConfig | None = None
    illuminate: IlluminateConfig | None = None


class WorkerConfig(_Strict):
    """The whole file."""

    kafka: KafkaConfig = KafkaConfig()
    ops: OpsConfig = OpsConfig()
    log_level: str = Field("info", pattern=r"^(debug|info|warning|error)$")
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
    raw = _interpolate(raw, (), env, path, lines)
    try:
        config = WorkerConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(err, path, lines) for err in exc.errors())) from None
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


def _interpolate(value: Any, at: tuple[Any, ...], env: dict[str, str], path: Path,
                 lines: dict[tuple[Any, ...], int]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*at, k), env, path, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*at, i), env, path, lines) for i, v in enumerate(value)]
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"{path}:{_line_of(at, lines)}: {_dotted(at)}: environment variable {name} is not set"
                )
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
