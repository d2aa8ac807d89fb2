"""Shared helpers for the deployment tests (tests/deploy/test_deploy_*.py).

The tools these tests drive are real programs, found on PATH: `kubectl kustomize` (or
`kustomize`), `docker-compose` 1.x (or the `docker compose` v2 plugin).  Python tools
come from requirements-deploy.txt.  A missing tool FAILS the test with the command
that installs it; nothing is skipped.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest

from ezspark_common.wire import messages

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"

INSTALL_HINT = "install the deploy test tools with `bash deploy/ci-install.sh`"
PIP_HINT = "install it with `.venv/bin/pip install -r requirements-deploy.txt`"

# service name -> (settings module, settings class)
SERVICES: dict[str, tuple[str, str]] = {
    "gateway": ("ezspark_gateway.settings", "GatewaySettings"),
    "evolver": ("ezspark_evolver.settings", "EvolverSettings"),
    "evaluator": ("ezspark_evaluator.settings", "EvaluatorSettings"),
}
SERVICE_DIRS = {name: REPO / "services" / name for name in SERVICES}

# Probe paths the gateway serves (FastAPI routes) and the metrics path of the others.
GATEWAY_LIVENESS = "/healthz"
GATEWAY_READINESS = "/readyz"
METRICS_PATH = "/metrics"
# Queue names, from the library that declares them: one task queue per environment
# (ezspark.tasks.<env_id>), each with a dead-letter queue <queue>.dead.
TASK_QUEUES = tuple(
    messages.tasks_queue(env)
    for env in (
        "CartPole-v1",
        "LunarLander-v3",
        "pkg.mod:Env-v0",
        "my_pkg.envs:Maze-v0",
        "Dead-v0",
        "d",
        "ad",
        "ead",
        "xdead",
    )
)
OTHER_QUEUES = (
    messages.RESULTS_QUEUE,
    messages.COMMANDS_QUEUE,
    messages.EVENTS_QUEUE,
    "amq.gen-JhYh3XzS8Q",  # a subscriber's private queue on ezspark.evaluators
    messages.TASKS_QUEUE,  # the old single task queue, and every dead-letter queue
    *(
        messages.dead_letter_queue(q)
        for q in (*TASK_QUEUES, messages.TASKS_QUEUE, messages.RESULTS_QUEUE)
    ),
)
# Real settings that deployment files must never set (test-only fault injection).
TEST_ONLY_VARS = frozenset({"EZSPARK_FAULT_FITNESS_OFFSET"})
# Variables that are not settings but that a service's runtime reads: the BLAS thread
# pools of numpy (one evaluator per core must not start a pool per core).
RUNTIME_VARS = frozenset({"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"})


def gateway_routes() -> set[str]:
    """Paths the gateway's FastAPI routers declare (read from its source)."""
    routes: set[str] = set()
    for path in (SERVICE_DIRS["gateway"] / "src").rglob("*.py"):
        routes |= set(
            re.findall(r"@\w+\.(?:get|head|api_route)\(\s*\"([^\"]+)\"", path.read_text())
        )
    return routes


# ------------------------------------------------------------------ tool discovery
def require_module(name: str, pip_name: str | None = None) -> ModuleType:
    """Import a Python test tool, or fail (not skip) naming how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(
            f"Python package {pip_name or name!r} is required for the deploy tests "
            f"({exc}); {PIP_HINT}",
            pytrace=False,
        )


def _works(argv: list[str]) -> bool:
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def kustomize_command() -> list[str]:
    """argv prefix that renders a kustomization directory: kubectl kustomize or kustomize build."""
    kubectl = shutil.which("kubectl")
    if kubectl and _works([kubectl, "kustomize", "--help"]):
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    if kustomize and _works([kustomize, "version"]):
        return [kustomize, "build"]
    pytest.fail(
        "neither `kubectl kustomize` nor `kustomize` is available to render deploy/k8s; "
        + INSTALL_HINT,
        pytrace=False,
    )


def compose_command() -> list[str]:
    """argv prefix of a real Compose implementation (docker-compose 1.x or docker compose v2)."""
    legacy = shutil.which("docker-compose")
    if legacy and _works([legacy, "version"]):
        return [legacy]
    docker = shutil.which("docker")
    if docker and _works([docker, "compose", "version"]):
        return [docker, "compose"]
    pytest.fail(
        "no Compose implementation found (`docker-compose` or the `docker compose` plugin) "
        "to validate docker-compose.yml; " + INSTALL_HINT,
        pytrace=False,
    )


def clean_env(home: Path) -> dict[str, str]:
    """A minimal environment for subprocesses, so the caller's variables cannot leak in."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}


# ------------------------------------------------------------------ YAML
def yaml_module() -> Any:
    return require_module("yaml", "PyYAML")


def load_yaml(path: Path) -> Any:
    return yaml_module().safe_load(path.read_text())


def load_yaml_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml_module().safe_load_all(text) if doc]


# ------------------------------------------------------------------ settings
def settings_class(service: str) -> type[Any]:
    """The service's settings class, imported live (fields added later are seen)."""
    module, cls = SERVICES[service]
    return getattr(importlib.import_module(module), cls)


def settings_env_names(cls: type[Any]) -> set[str]:
    """Every environment variable name the settings class reads."""
    prefix = cls.model_config.get("env_prefix", "")
    names = {f"{prefix}{name}".upper() for name in cls.model_fields}
    for field in cls.model_fields.values():  # e.g. FORWARDED_ALLOW_IPS, uvicorn's name
        choices = getattr(field.validation_alias, "choices", [])
        names |= {c.upper() for c in choices if isinstance(c, str)}
    return names


def load_settings(cls: type[Any], env: Mapping[str, str]) -> Any:
    """Build the settings exactly from ``env`` (the process environment is hidden)."""
    with mock.patch.dict(os.environ, dict(env), clear=True):
        return cls()


def check_service_env(service: str, env: Mapping[str, str], where: str) -> Any:
    """Assert every EZSPARK_* variable in ``env`` is a real field; return the parsed settings."""
    cls = settings_class(service)
    known = settings_env_names(cls)
    given = {k for k in env if k.upper().startswith("EZSPARK_") or k in known}
    unknown = sorted(given - known)
    assert not unknown, (
        f"{where}: {unknown} set but {cls.__name__} has no such field (it reads: {sorted(known)})"
    )
    forbidden = sorted(given & TEST_ONLY_VARS)
    assert not forbidden, f"{where}: test-only settings must never be deployed: {forbidden}"
    lower_case = sorted(k for k in given if k != k.upper())
    assert not lower_case, f"{where}: variable names must be upper case: {lower_case}"
    return load_settings(cls, env)


# ------------------------------------------------------------------ Kubernetes
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand_k8s(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes dependent-variable expansion: $(VAR) from earlier vars, $$ escapes."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REF.sub(repl, value)


def k8s_refs(value: str) -> set[str]:
    return {m.group(1) for m in _REF.finditer(value) if m.group(1)}


class Cluster:
    """The objects of one rendered overlay, plus what operators generate from them."""

    def __init__(self, docs: list[dict[str, Any]]):
        self.docs = docs
        self.by_kind: dict[str, dict[str, dict[str, Any]]] = {}
        for doc in docs:
            self.by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
        # The RabbitMQ Cluster Operator makes a client Service, the default-user Secret
        # and labelled pods for each RabbitmqCluster; model them for reference checks.
        self.generated_secrets: dict[str, dict[str, str]] = {}
        self.generated_services: dict[str, dict[str, Any]] = {}
        self.generated_pod_labels: list[dict[str, str]] = []
        for name, rmq in self.of("RabbitmqCluster").items():
            ns = rmq["metadata"].get("namespace", "default")
            labels = {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/component": "rabbitmq",
                "app.kubernetes.io/part-of": "rabbitmq",
            }
            self.generated_secrets[f"{name}-default-user"] = {
                "username": "default_user_Zk9vYmFyYmF6cXV4",
                "password": "b3BlcmF0b3ItZ2VuZXJhdGVkLXBhc3N3",
                "host": f"{name}.{ns}.svc",
                "port": "5672",
                "provider": "rabbitmq",
                "type": "rabbitmq",
            }
            self.generated_services[name] = {
                "labels": labels,
                "ports": {"amqp": 5672, "management": 15672, "prometheus": 15692},
            }
            self.generated_pod_labels.append(labels)
        # CloudNativePG makes `<name>-app` (the application user's URI) and labels the
        # instances' pods with the cluster name.
        for name in self.of("Cluster"):
            ns = self.of("Cluster")[name]["metadata"].get("namespace", "default")
            self.generated_secrets[f"{name}-app"] = {
                "username": "ezspark",
                "password": "Y25wZy1nZW5lcmF0ZWQ",
                "uri": f"postgresql://ezspark:Y25wZy1nZW5lcmF0ZWQ@{name}-rw.{ns}:5432/ezspark",
            }
            self.generated_pod_labels.append({"cnpg.io/cluster": name})
        # The Messaging Topology Operator generates each User's credentials Secret.
        for name in self.of("User"):
            self.generated_secrets[f"{name}-user-credentials"] = {
                "username": f"{name}-Z2VuZXJhdGVk",
                "password": f"{name}-cGFzc3dvcmQ",
            }

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.by_kind.get(kind, {})

    def workloads(self) -> Iterator[dict[str, Any]]:
        for kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield from self.of(kind).values()

    def pod_labels(self) -> list[dict[str, str]]:
        found = [w["spec"]["template"]["metadata"].get("labels", {}) for w in self.workloads()]
        jobs = [
            c["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
            for c in self.of("CronJob").values()
        ]
        return found + jobs + self.generated_pod_labels

    def secret_data(self, name: str) -> dict[str, str] | None:
        import base64

        if name in self.of("Secret"):
            secret = self.of("Secret")[name]
            data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
            data.update(secret.get("stringData", {}))
            return data
        return self.generated_secrets.get(name)

    def configmap_data(self, name: str) -> dict[str, str] | None:
        cm = self.of("ConfigMap").get(name)
        return None if cm is None else dict(cm.get("data", {}))

    def container_env(self, container: dict[str, Any], where: str) -> dict[str, str]:
        """The environment the kubelet gives ``container`` (envFrom, then env, expanded)."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                name = source["configMapRef"]["name"]
                data = self.configmap_data(name)
            else:
                name = source["secretRef"]["name"]
                data = self.secret_data(name)
            assert data is not None, f"{where}: envFrom refers to missing object {name!r}"
            env.update({prefix + k: v for k, v in data.items()})
        for item in container.get("env", []):
            name = item["name"]
            if "value" in item:
                env[name] = expand_k8s(str(item["value"]), env)
                continue
            ref = item.get("valueFrom", {})
            if "secretKeyRef" in ref:
                src = ref["secretKeyRef"]
                data = self.secret_data(src["name"])
                kind = "Secret"
            elif "configMapKeyRef" in ref:
                src = ref["configMapKeyRef"]
                data = self.configmap_data(src["name"])
                kind = "ConfigMap"
            else:  # fieldRef / resourceFieldRef: a runtime value
                env[name] = f"<runtime:{name}>"
                continue
            assert data is not None, f"{where}: {name} refers to missing {kind} {src['name']!r}"
            assert src["key"] in data, (
                f"{where}: {name} refers to key {src['key']!r} absent from {kind} {src['name']!r}"
            )
            env[name] = data[src["key"]]
        return env


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def copy_deploy_tree(dest: Path) -> Path:
    """Copy deploy/ to ``dest`` (without any user-made broker.env) and return the copy."""
    target = dest / "deploy"
    shutil.copytree(DEPLOY, target, ignore=shutil.ignore_patterns("broker.env"))
    return target


def render(kustomization_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kustomize_command(), str(kustomization_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ------------------------------------------------------------------ Dockerfile
def dockerfile_stages(path: Path) -> dict[str, dict[str, Any]]:
    """Parse a Dockerfile with BuildKit's own parser into stages with their instructions."""
    dockerfile = require_module("dockerfile", "dockerfile")
    try:
        commands = dockerfile.parse_file(str(path))
    except dockerfile.GoParseError as exc:  # pragma: no cover - message is the point
        pytest.fail(f"{path} does not parse: {exc}", pytrace=False)
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    global_args: dict[str, str] = {}
    for index, cmd in enumerate(commands):
        if cmd.cmd == "FROM":
            value = list(cmd.value)
            name = value[2] if len(value) >= 3 and value[1].upper() == "AS" else f"#{index}"
            current = {"name": name, "from": value[0], "commands": []}
            stages[name] = current
        elif current is None:
            if cmd.cmd == "ARG":
                for item in cmd.value:
                    key, _, default = item.partition("=")
                    global_args[key] = default
        else:
            current["commands"].append(cmd)
    for stage in stages.values():
        stage["global_args"] = global_args
    return stages


def stage_chain(stages: dict[str, dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The stage and its ancestors (FROM <stage>), nearest first."""
    chain = []
    while name in stages:
        chain.append(stages[name])
        name = stages[name]["from"]
    return chain


def stage_setting(stages: dict[str, dict[str, Any]], name: str, instruction: str) -> Any:
    """The last ``instruction`` (USER, CMD, HEALTHCHECK, ...) in effect for a target."""
    for stage in stage_chain(stages, name):
        for cmd in reversed(stage["commands"]):
            if cmd.cmd == instruction:
                return cmd
    return None


def stage_env(stages: dict[str, dict[str, Any]], name: str) -> dict[str, str]:
    """ENV variables an image built from target ``name`` starts with."""
    env: dict[str, str] = {}
    for stage in reversed(stage_chain(stages, name)):
        for cmd in stage["commands"]:
            if cmd.cmd == "ENV":
                values = list(cmd.value)
                for key, val in zip(values[::2], values[1::2], strict=True):
                    env[key] = val.strip('"')
    return env


def base_image(stages: dict[str, dict[str, Any]], name: str) -> str:
    root = stage_chain(stages, name)[-1]
    image = root["from"]
    for key, default in root["global_args"].items():
        image = image.replace("${" + key + "}", default).replace("$" + key, default)
    return image


# ------------------------------------------------------------------ kubernetes-validate
def k8s_versions() -> list[str]:
    """Kubernetes versions to validate against: the oldest we support (1.29) and the newest."""
    kv = require_module("kubernetes_validate", "kubernetes-validate")
    available = sorted(
        {".".join(v.split(".")[:2]) for v in kv.utils.all_versions()},
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )
    supported = [v for v in available if tuple(int(p) for p in v.split(".")) >= (1, 29)]
    assert supported, f"kubernetes-validate ships no schema >= 1.29 (has {available})"
    return sorted({supported[0], supported[-1]})


def validate_k8s_definition(obj: Any, definition: str, version: str) -> None:
    """Validate an embedded core object (e.g. ResourceRequirements inside a custom resource)
    against the strict OpenAPI definition that kubernetes-validate ships."""
    import json
    from importlib import resources

    jsonschema = require_module("jsonschema")
    full = next(
        v
        for v in require_module("kubernetes_validate").utils.all_versions()
        if v.startswith(version + ".")
    )
    root = resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{full}-local-strict/_definitions.json"
    )
    defs = json.loads(root.read_text())["$defs"]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "$ref": f"#/$defs/{definition}",
    }
    jsonschema.Draft202012Validator(schema).validate(obj)
