"""Kubernetes manifests: every overlay renders with real kustomize, built-in resources pass
strict schema validation, custom resources carry what their operators require, and each
container's environment is exactly what the services' settings classes read."""

from __future__ import annotations

import re
import secrets
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from ezspark_common.wire.permissions import SERVICE_PERMISSIONS

try:
    from . import deploy_helpers as dh
except ImportError:  # tests/unit is not a package: pytest put it on sys.path
    import deploy_helpers as dh

OVERLAYS = ("dev", "prod", "prod-hpa")  # prod-hpa: prod with the HPA component instead of KEDA
CUSTOM_KINDS = {
    "RabbitmqCluster",
    "ScaledObject",
    "TriggerAuthentication",
    "ServiceMonitor",
    "PodMonitor",
    "User",
    "Permission",
    "Cluster",
    "PrometheusRule",
}
NAMESPACE = "ezspark"
APP = tuple(dh.SERVICES)
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
DURATION = re.compile(r"^(0|(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$")
PASSWORD = secrets.token_hex(24)
# One password per EzSpark broker user (least privilege), as broker.env holds them.
SERVICE_PASSWORDS = {
    k: secrets.token_hex(24) for k in ("evolver", "gateway", "evaluator", "issuer")
}
QUOTA_VARS = (
    "EZSPARK_QUOTA_ACTIVE_TRAININGS",
    "EZSPARK_QUOTA_WORK_PER_GENERATION",
    "EZSPARK_QUOTA_POPULATION",
)
# Secrets an overlay may render: the user's broker credentials (dev) and where KEDA finds
# the management API (prod; an URL without credentials).
KEDA_HOST_SECRET = "ezspark-rabbitmq-management"


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/ with a user-style broker.env and a prod-with-HPA overlay."""
    deploy = dh.copy_deploy_tree(tmp_path_factory.mktemp("k8s"))
    k8s = deploy / "k8s"
    (k8s / "base" / "rabbitmq" / "broker.env").write_text(
        f"username=ezspark\npassword={PASSWORD}\n"
        + "".join(f"{k}-password={v}\n" for k, v in SERVICE_PASSWORDS.items())
    )
    hpa = k8s / "overlays" / "prod-hpa"
    hpa.mkdir()
    for f in (k8s / "overlays" / "prod").iterdir():
        (hpa / f.name).write_text(f.read_text())
    text = (hpa / "kustomization.yaml").read_text()
    assert "- ../../components/keda" in text
    (hpa / "kustomization.yaml").write_text(
        text.replace("- ../../components/keda", "- ../../components/hpa")
    )
    return k8s


@pytest.fixture(scope="module")
def clusters(workspace: Path) -> dict[str, dh.Cluster]:
    """Every overlay rendered by kubectl kustomize / kustomize build."""
    rendered = {}
    for overlay in OVERLAYS:
        proc = dh.render(workspace / "overlays" / overlay)
        assert proc.returncode == 0, f"overlay {overlay} does not render:\n{proc.stderr}"
        rendered[overlay] = dh.Cluster(dh.load_yaml_docs(proc.stdout))
    return rendered


def _app_container(cluster: dh.Cluster, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    (workload,) = [
        w
        for w in cluster.workloads()
        if w["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name")
        == f"ezspark-{service}"
    ]
    (container,) = [
        c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == service
    ]
    return workload, container


def _settings(cluster: dh.Cluster, service: str, where: str) -> Any:
    _, container = _app_container(cluster, service)
    return dh.check_service_env(service, cluster.container_env(container, where), where)


def _named_ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    ports = _named_ports(container)
    assert port in ports, f"{container['name']}: no container port named {port!r}"
    return ports[port]


# ------------------------------------------------------------------ rendering
def test_every_overlay_renders_with_kustomize(clusters: dict[str, dh.Cluster]) -> None:
    """dev, prod and prod+HPA render offline and hold the objects each variant promises."""
    for name, cluster in clusters.items():
        for kind in ("ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"):
            assert cluster.of(kind), f"{name}: no {kind}"
        # `kubectl delete -k` must never take the namespace, and its volumes, with it.
        assert not cluster.of("Namespace"), f"{name}: the Namespace belongs in namespace.yaml"
        assert {d["metadata"].get("namespace", NAMESPACE) for d in cluster.docs} == {NAMESPACE}
    dev = clusters["dev"]
    assert "rabbitmq" in dev.of("StatefulSet")
    assert dev.of("Secret")
    assert dev.of("Service")["rabbitmq-headless"]["spec"]["clusterIP"] == "None"
    assert not dev.of("RabbitmqCluster")
    prod = clusters["prod"]
    for kind in CUSTOM_KINDS | {"NetworkPolicy"}:
        assert prod.of(kind), f"prod: no {kind}"
    assert "rabbitmq" not in prod.of("StatefulSet")
    assert set(prod.of("Secret")) == {KEDA_HOST_SECRET}
    assert set(clusters["prod-hpa"].of("Secret")) == set()
    assert "ezspark-grafana-dashboard" in prod.of("ConfigMap")
    assert clusters["prod-hpa"].of("HorizontalPodAutoscaler")


def test_rendering_needs_user_created_broker_credentials(tmp_path: Path) -> None:
    """No default credentials: dev renders only once the user creates broker.env."""
    k8s = dh.copy_deploy_tree(tmp_path) / "k8s"
    proc = dh.render(k8s / "overlays" / "dev")
    assert proc.returncode != 0, "dev rendered without broker.env"
    assert "broker.env" in proc.stderr, proc.stderr
    assert dh.render(k8s / "overlays" / "prod").returncode == 0, "prod must not need broker.env"
    example = (dh.K8S / "base" / "rabbitmq" / "broker.env.example").read_text()
    keys = [
        line.split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and not line.startswith("#")
    ]
    assert keys == ["username"], "the example must not carry a usable password"
    assert "broker.env" in (dh.K8S / ".gitignore").read_text().split()


def test_builtin_resources_pass_kubernetes_validate_strict(
    clusters: dict[str, dh.Cluster],
) -> None:
    """Every built-in resource of every overlay passes kubernetes-validate --strict."""
    kv = dh.require_module("kubernetes_validate", "kubernetes-validate")
    errors = []
    for name, cluster in clusters.items():
        for doc in cluster.docs:
            if doc["kind"] in CUSTOM_KINDS:
                continue
            for version in dh.k8s_versions():
                try:
                    kv.validate(doc, version, strict=True)
                except kv.ValidationError as exc:
                    path = ".".join(str(p) for p in exc.path)
                    errors.append(
                        f"{name} {doc['kind']}/{doc['metadata']['name']} @{version}: "
                        f"{path}: {exc.message}"
                    )
                except kv.SchemaNotFoundError as exc:
                    errors.append(f"{name}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_no_default_or_committed_credentials(clusters: dict[str, dh.Cluster]) -> None:
    """No guest account anywhere; Secrets: broker.env's, and KEDA's credential-free host URL."""
    for name, cluster in clusters.items():
        yaml = dh.yaml_module()
        assert "guest" not in yaml.safe_dump_all(cluster.docs), name
        for secret in cluster.of("Secret"):
            if secret == KEDA_HOST_SECRET:
                data = cluster.secret_data(secret)
                assert data is not None
                assert set(data) == {"host"}, data
                url = urlsplit(data["host"])
                assert not url.username, "credentials stay generated"
                assert not url.password, "credentials stay generated"
                continue
            assert secret.startswith("ezspark-broker-"), f"{name}: unexpected Secret {secret}"
    dev = clusters["dev"]
    (secret,) = dev.of("Secret")
    assert dev.secret_data(secret) == {
        "username": "ezspark",
        "password": PASSWORD,
        **{f"{k}-password": v for k, v in SERVICE_PASSWORDS.items()},
        **{f"{k}-username": f"ezspark-{k}" for k in SERVICE_PASSWORDS},
    }


# ------------------------------------------------------------------ settings and env
@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", APP)
def test_container_env_is_exactly_what_settings_read(
    clusters: dict[str, dh.Cluster], overlay: str, service: str
) -> None:
    """Resolved container env sets only real EZSPARK_* fields that parse; helpers feed the URL."""
    cluster = clusters[overlay]
    where = f"{overlay}/{service}"
    _, container = _app_container(cluster, service)
    env = cluster.container_env(container, where)
    ezspark = {k: v for k, v in env.items() if k.startswith("EZSPARK_")}
    used = set().union(
        *(dh.k8s_refs(str(item.get("value", ""))) for item in container.get("env", []))
    )
    helpers = (
        set(env)
        - set(ezspark)
        - dh.RUNTIME_VARS
        - dh.settings_env_names(dh.settings_class(service))
    )
    assert helpers <= used, f"{where}: variables nobody reads: {sorted(helpers - used)}"
    unresolved = {k: v for k, v in ezspark.items() if dh.k8s_refs(v)}
    assert not unresolved, f"{where}: unresolved $(VAR) in {unresolved}"
    settings = dh.check_service_env(service, env, where)

    url = urlsplit(settings.broker_url)
    assert url.scheme == "amqp"
    assert url.port == 5672
    assert unquote(url.path[1:]) == "/"
    # Least privilege: each service connects as its own broker user.
    assert settings.broker_declares is (service == "evolver")
    if cluster.of("RabbitmqCluster"):
        (rmq,) = cluster.of("RabbitmqCluster")
        assert url.hostname == rmq
        creds = cluster.generated_secrets[f"ezspark-{service}-user-credentials"]
        assert (url.username, url.password) == (creds["username"], creds["password"])
    else:
        service_obj = cluster.of("Service")[url.hostname]
        assert 5672 in [p["port"] for p in service_obj["spec"]["ports"]]
        _, broker = next(
            (w, c)
            for w in cluster.workloads()
            for c in w["spec"]["template"]["spec"]["containers"]
            if dh.labels_match(
                service_obj["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"]
            )
        )
        broker_env = cluster.container_env(broker, f"{overlay}/rabbitmq")
        assert broker_env["RABBITMQ_DEFAULT_PASS"] == PASSWORD
        assert url.username == f"ezspark-{service}"
        assert url.password == SERVICE_PASSWORDS[service]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_probes_and_services_agree_with_settings(
    clusters: dict[str, dh.Cluster], overlay: str
) -> None:
    """Gateway :8000 with /healthz + /readyz; evaluator :9101 and evolver :9102 /metrics."""
    cluster = clusters[overlay]
    routes = dh.gateway_routes()
    for path in (dh.GATEWAY_LIVENESS, dh.GATEWAY_READINESS, dh.METRICS_PATH):
        assert path in routes, f"the gateway declares no route {path} (it has {sorted(routes)})"
    gateway = _settings(cluster, "gateway", overlay)
    assert (gateway.port, gateway.host) == (8000, "0.0.0.0")
    # prod sits behind HTTPS: session cookies must be Secure there.
    assert gateway.cookie_secure is overlay.startswith("prod")
    _, gw = _app_container(cluster, "gateway")
    assert _port_number(gw, gw["livenessProbe"]["httpGet"]["port"]) == gateway.port
    assert gw["livenessProbe"]["httpGet"]["path"] == dh.GATEWAY_LIVENESS
    assert gw["readinessProbe"]["httpGet"]["path"] == dh.GATEWAY_READINESS
    assert _port_number(gw, gw["readinessProbe"]["httpGet"]["port"]) == gateway.port
    svc = cluster.of("Service")["ezspark-gateway"]["spec"]["ports"][0]
    assert _port_number(gw, svc["targetPort"]) == gateway.port

    expected = {"evaluator": 9101, "evolver": 9102}
    for service, port in expected.items():
        settings = _settings(cluster, service, overlay)
        assert settings.metrics_port == port
        workload, container = _app_container(cluster, service)
        for probe in ("livenessProbe", "readinessProbe"):
            http = container[probe]["httpGet"]
            assert http["path"] == dh.METRICS_PATH
            assert _port_number(container, http["port"]) == settings.metrics_port
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert int(annotations["prometheus.io/port"]) == settings.metrics_port
    assert set(cluster.of("Deployment")) >= {
        "ezspark-gateway",
        "ezspark-evaluator",
        "ezspark-evolver",
    }


def test_images_match_compose_and_dockerfile_targets(clusters: dict[str, dh.Cluster]) -> None:
    """Images are compose's ezspark/<service> Dockerfile targets; prod pins the version."""
    compose = dh.load_yaml(dh.REPO / "docker-compose.yml")["services"]
    stages = dh.dockerfile_stages(dh.REPO / "Dockerfile")
    for service in APP:
        repo = f"ezspark/{service}"
        assert compose[service]["image"].split(":")[0] == repo
        assert compose[service]["build"]["target"] == service
        assert service in stages
        version = tomllib.loads((dh.SERVICE_DIRS[service] / "pyproject.toml").read_text())[
            "project"
        ]["version"]
        for overlay, cluster in clusters.items():
            _, container = _app_container(cluster, service)
            image, _, tag = container["image"].rpartition(":")
            assert image == repo, (overlay, container["image"])
            assert tag == ("dev" if overlay == "dev" else version), (overlay, container["image"])


# ------------------------------------------------------------------ workloads
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_evaluator_has_resources_and_probes(clusters: dict[str, dh.Cluster], overlay: str) -> None:
    """Evaluator Deployment: CPU/memory requests and limits (limits >= requests), both probes."""

    def qty(value: str) -> float:
        units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
        match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
        assert match, value
        return float(match.group(1)) * units.get(match.group(2), 1)

    workload, container = _app_container(clusters[overlay], "evaluator")
    assert workload["kind"] == "Deployment"
    resources = container["resources"]
    for res in ("cpu", "memory"):
        assert qty(resources["limits"][res]) >= qty(resources["requests"][res]) > 0, res
    assert container["livenessProbe"]
    assert container["readinessProbe"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_evolver_runs_active_and_standby_on_one_shared_claim(
    clusters: dict[str, dh.Cluster], overlay: str
) -> None:
    """2 evolver replicas mount ONE claim on data_dir (with the lock): RWX, or RWO on one node."""
    cluster = clusters[overlay]
    settings = _settings(cluster, "evolver", overlay)
    workload, container = _app_container(cluster, "evolver")
    assert workload["kind"] == "Deployment"
    assert workload["spec"]["replicas"] == 2, "an active evolver and a hot standby"
    assert not workload["spec"].get("volumeClaimTemplates"), "per-replica volumes share no lock"
    pod = workload["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    volume = volumes[mounts[settings.data_dir]]
    assert "persistentVolumeClaim" in volume, "data_dir must be a persistent volume claim"
    claim = cluster.of("PersistentVolumeClaim")[volume["persistentVolumeClaim"]["claimName"]]
    lock = Path(settings.leader_lock_path)
    assert Path(settings.data_dir) in lock.parents, f"leader lock {lock} is not on the volume"
    modes = claim["spec"]["accessModes"]
    if overlay == "dev":  # single-node laptop clusters: RWO, both pods forced onto one node
        assert modes == ["ReadWriteOnce"]
        (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert dh.labels_match(
            term["labelSelector"]["matchLabels"], workload["spec"]["template"]["metadata"]["labels"]
        )
        assert "podAntiAffinity" not in pod["affinity"]
    else:
        assert modes == ["ReadWriteMany"], f"{overlay}: the evolvers may run on two nodes"
    # A rollout starts the new standby before it stops an old evolver.
    assert workload["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    service = cluster.of("Service")["ezspark-evolver"]
    assert service["spec"]["clusterIP"] == "None"
    gateway = _settings(cluster, "gateway", overlay)
    if overlay == "dev":  # SQLite on a claim; prod keeps its database in PostgreSQL
        _, gw = _app_container(cluster, "gateway")
        gw_mounts = {m["mountPath"]: m["name"] for m in gw["volumeMounts"]}
        db_dir = str(Path(gateway.database_url.removeprefix("sqlite:///")).parent)
        pod_volumes = {
            v["name"]: v
            for v in _app_container(cluster, "gateway")[0]["spec"]["template"]["spec"]["volumes"]
        }
        assert "persistentVolumeClaim" in pod_volumes[gw_mounts[db_dir]], "gateway DB persists"
    else:
        assert gateway.database_url.startswith("postgresql://")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_evaluator_grace_period_exceeds_its_stop_timeout(
    clusters: dict[str, dh.Cluster], overlay: str
) -> None:
    """terminationGracePeriodSeconds > the evaluator's (explicit) EZSPARK_STOP_TIMEOUT_S."""
    cluster = clusters[overlay]
    workload, container = _app_container(cluster, "evaluator")
    env = cluster.container_env(container, overlay)
    assert "EZSPARK_STOP_TIMEOUT_S" in env, "set the stop timeout explicitly"
    settings = dh.check_service_env("evaluator", env, overlay)
    grace = workload["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    assert grace > settings.stop_timeout_s > 0, (grace, settings.stop_timeout_s)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_and_evolver_read_quotas_from_one_configmap(
    clusters: dict[str, dh.Cluster], overlay: str
) -> None:
    """Every EZSPARK_QUOTA_* reaches gateway and evolver from the same ConfigMap, unoverridden."""
    cluster = clusters[overlay]
    sources = {}
    for service in ("gateway", "evolver"):
        _, container = _app_container(cluster, service)
        assert not {item["name"] for item in container.get("env", [])} & set(QUOTA_VARS)
        refs = [s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s]
        holders = {
            ref for ref in refs for var in QUOTA_VARS if var in (cluster.configmap_data(ref) or {})
        }
        assert len(holders) == 1, f"{overlay}/{service}: quotas from {holders or 'nowhere'}"
        (holder,) = holders
        assert set(QUOTA_VARS) <= set(cluster.configmap_data(holder) or {})
        sources[service] = holder
    assert sources["gateway"] == sources["evolver"], sources
    quotas = {
        service: _settings(cluster, service, f"{overlay}/{service}").quotas
        for service in ("gateway", "evolver")
    }
    assert quotas["gateway"] == quotas["evolver"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_run_unprivileged(clusters: dict[str, dh.Cluster], overlay: str) -> None:
    """Every pod runs as non-root without privilege escalation or extra capabilities."""
    for workload in clusters[overlay].workloads():
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves(clusters: dict[str, dh.Cluster], overlay: str) -> None:
    """ConfigMap/Secret/PVC volumes, env refs, Service selectors and target ports all resolve."""
    cluster = clusters[overlay]
    for workload in cluster.workloads():
        name = workload["metadata"]["name"]
        template = workload["spec"]["template"]
        assert dh.labels_match(
            workload["spec"]["selector"]["matchLabels"], template["metadata"]["labels"]
        )
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                assert volume["configMap"]["name"] in cluster.of("ConfigMap"), (name, volume)
            if "secret" in volume:
                assert cluster.secret_data(volume["secret"]["secretName"]) is not None
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert claim in cluster.of("PersistentVolumeClaim"), (name, claim)
        for container in template["spec"]["containers"]:
            cluster.container_env(container, f"{overlay}/{name}")  # asserts refs exist
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes or mount["name"] in claims, (name, mount)
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if "httpGet" in container.get(probe, {}):
                    _port_number(container, container[probe]["httpGet"]["port"])
    for name, service in cluster.of("Service").items():
        selector = service["spec"]["selector"]
        pods = [
            c
            for w in cluster.workloads()
            if dh.labels_match(selector, w["spec"]["template"]["metadata"]["labels"])
            for c in w["spec"]["template"]["spec"]["containers"]
        ]
        assert pods, f"{overlay}: Service {name} selects no pod"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(
                target in _named_ports(c) or target in _named_ports(c).values() for c in pods
            ), (name, port)


# ------------------------------------------------------------------ custom resources
def _only_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = set(obj) - allowed
    assert not extra, f"{where}: fields the operator's CRD does not define: {sorted(extra)}"


def test_rabbitmq_cluster_has_operator_required_fields(clusters: dict[str, dh.Cluster]) -> None:
    """RabbitmqCluster (rabbitmq.com/v1beta1): replicas, image, storage, valid resources, config."""
    (rmq,) = clusters["prod"].of("RabbitmqCluster").values()
    assert rmq["apiVersion"] == "rabbitmq.com/v1beta1"
    spec = rmq["spec"]
    _only_keys(
        spec,
        {
            "replicas",
            "image",
            "imagePullSecrets",
            "service",
            "persistence",
            "resources",
            "affinity",
            "tolerations",
            "rabbitmq",
            "tls",
            "override",
            "skipPostDeploySteps",
            "terminationGracePeriodSeconds",
            "delayStartSeconds",
            "secretBackend",
            "autoEnableAllFeatureFlags",
        },
        "RabbitmqCluster.spec",
    )
    assert isinstance(spec["replicas"], int)
    assert spec["replicas"] in (1, 3, 5)
    assert re.fullmatch(r"rabbitmq:[\w.-]+", spec["image"])
    assert QUANTITY.match(str(spec["persistence"]["storage"]))
    for version in dh.k8s_versions():
        dh.validate_k8s_definition(
            spec["resources"], "io.k8s.api.core.v1.ResourceRequirements", version
        )
    _only_keys(
        spec["rabbitmq"],
        {
            "additionalPlugins",
            "additionalConfig",
            "advancedConfig",
            "envConfig",
            "erlangInetConfig",
        },
        "RabbitmqCluster.spec.rabbitmq",
    )
    config = spec["rabbitmq"]["additionalConfig"]
    assert len(config) <= 2000
    for line in config.strip().splitlines():
        assert re.fullmatch(r"[a-z_.0-9]+ = \S.*", line), line
        assert not line.startswith(("default_user", "default_pass")), "credentials stay generated"


def _keda_trigger(prod: dh.Cluster) -> dict[str, Any]:
    (scaled,) = prod.of("ScaledObject").values()
    (trigger,) = scaled["spec"]["triggers"]
    return trigger


def test_keda_scales_evaluators_on_all_task_queues(clusters: dict[str, dh.Cluster]) -> None:
    """KEDA sums ready+unacked over the task queues via the management API; creds in a Secret."""
    prod = clusters["prod"]
    (scaled,) = prod.of("ScaledObject").values()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    _only_keys(
        spec,
        {
            "scaleTargetRef",
            "pollingInterval",
            "cooldownPeriod",
            "initialCooldownPeriod",
            "idleReplicaCount",
            "minReplicaCount",
            "maxReplicaCount",
            "advanced",
            "triggers",
            "fallback",
        },
        "ScaledObject.spec",
    )
    target = spec["scaleTargetRef"]
    assert target.get("kind", "Deployment") in prod.by_kind
    assert target["name"] in prod.of(target.get("kind", "Deployment"))
    assert target["name"] == "ezspark-evaluator"
    # Never zero: without a live evaluator the evolver queues no task, so nothing would
    # ever scale the evaluators back up.
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert "idleReplicaCount" not in spec
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    for version in dh.k8s_versions():
        dh.validate_k8s_definition(
            behavior, "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior", version
        )
    trigger = _keda_trigger(prod)
    _only_keys(
        trigger,
        {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"},
        "trigger",
    )
    assert trigger["type"] == "rabbitmq"
    meta = trigger["metadata"]
    assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata values are strings"
    _only_keys(
        meta,
        {
            "host",
            "protocol",
            "mode",
            "value",
            "activationValue",
            "queueName",
            "vhostName",
            "hostFromEnv",
            "usernameFromEnv",
            "passwordFromEnv",
            "unsafeSsl",
            "useRegex",
            "excludeUnacknowledged",
            "pageSize",
            "operation",
            "timeout",
        },
        "rabbitmq trigger metadata",
    )
    # Over http, QueueLength is the management API's `messages`: ready + unacknowledged
    # (unless excludeUnacknowledged); useRegex needs http; `operation` combines the queues.
    assert meta["protocol"] == "http"
    assert meta["useRegex"] == "true"
    assert meta["operation"] == "sum"
    assert meta["mode"] == "QueueLength"
    assert meta.get("excludeUnacknowledged", "false") == "false"
    assert unquote(meta.get("vhostName", "/")) == "/"
    assert 1 <= int(meta.get("pageSize", "100")) <= 500  # RabbitMQ's largest page
    # At least the evaluator prefetch, and below the tasks the evolver keeps in flight per
    # evaluator (else a full window asks for no more evaluators than are running).
    assert meta["value"] == "1"
    evaluator = _settings(prod, "evaluator", "prod/evaluator")
    evolver = _settings(prod, "evolver", "prod/evolver")
    assert evaluator.prefetch <= float(meta["value"]) < evolver.window_per_slot
    for key in ("host", "hostFromEnv", "usernameFromEnv", "passwordFromEnv"):
        assert key not in meta, f"{key}: host and credentials come from the TriggerAuthentication"

    auth = prod.of("TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    _only_keys(auth["spec"], {"secretTargetRef"}, "TriggerAuthentication.spec")
    params = {}
    for ref in auth["spec"]["secretTargetRef"]:
        assert set(ref) == {"parameter", "name", "key"}, ref
        data = prod.secret_data(ref["name"])
        assert data is not None, ref
        assert ref["key"] in data, ref
        params[ref["parameter"]] = data[ref["key"]]
    assert set(params) == {"host", "username", "password"}
    (rmq_name,) = prod.of("RabbitmqCluster")
    host = urlsplit(params["host"])
    assert host.scheme == "http"
    assert host.hostname == f"{rmq_name}.{NAMESPACE}.svc"
    assert host.port == prod.generated_services[rmq_name]["ports"]["management"] == 15672
    assert not host.username, "credentials come from their own Secret"
    assert not host.password, "credentials come from their own Secret"
    generated = prod.generated_secrets[f"{rmq_name}-default-user"]
    assert (params["username"], params["password"]) == (
        generated["username"],
        generated["password"],
    )


def test_keda_queue_regex_selects_task_queues_but_no_dead_letter_queue(
    clusters: dict[str, dh.Cluster],
) -> None:
    """The manifest's queueName regex matches ezspark.tasks.<env_id> and no other queue."""
    pattern = _keda_trigger(clusters["prod"])["metadata"]["queueName"]
    assert not re.search(r"\(\?<?[=!]", pattern), "no lookaround: keep it portable (RE2)"
    assert pattern.startswith("^"), "RabbitMQ searches unanchored: anchor the pattern"
    assert pattern.endswith("$"), "RabbitMQ searches unanchored: anchor the pattern"
    # RabbitMQ filters with Erlang re:run(Name, Regex, [caseless]): an unanchored,
    # case-insensitive search.  Python's re reads this pattern the same way; check it
    # case-sensitive too.
    for flags in (re.IGNORECASE, 0):
        regex = re.compile(pattern, flags)
        for queue in (
            "ezspark.tasks.CartPole-v1",
            "ezspark.tasks.pkg.mod:Env-v0",
            *dh.TASK_QUEUES,
        ):
            assert regex.search(queue), f"{queue} not counted"
        for queue in (
            "ezspark.tasks.CartPole-v1.dead",
            "ezspark.results",
            "ezspark.commands",
            *dh.OTHER_QUEUES,
        ):
            assert not regex.search(queue), f"{queue} counted"


def test_prometheus_operator_monitors_select_real_targets(clusters: dict[str, dh.Cluster]) -> None:
    """ServiceMonitor/PodMonitor: required selector, endpoints whose named ports exist, paths."""
    prod = clusters["prod"]
    endpoint_keys = {
        "port",
        "targetPort",
        "path",
        "scheme",
        "params",
        "interval",
        "scrapeTimeout",
        "honorLabels",
        "relabelings",
        "metricRelabelings",
        "tlsConfig",
        "portNumber",
    }
    scraped: dict[str, set[str]] = {}
    for monitor in prod.of("ServiceMonitor").values():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]
        for version in dh.k8s_versions():
            dh.validate_k8s_definition(
                selector, "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", version
            )
        services = {
            name: {p["name"]: p["port"] for p in svc["spec"]["ports"]}
            for name, svc in prod.of("Service").items()
            if dh.labels_match(selector["matchLabels"], svc["metadata"].get("labels", {}))
        }
        services |= {
            name: gen["ports"]
            for name, gen in prod.generated_services.items()
            if dh.labels_match(selector["matchLabels"], gen["labels"])
        }
        assert services, f"ServiceMonitor {monitor['metadata']['name']} selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            _only_keys(endpoint, endpoint_keys, "ServiceMonitor endpoint")
            assert DURATION.match(endpoint["interval"])
            for name, ports in services.items():
                assert endpoint["port"] in ports, (name, endpoint)
                scraped.setdefault(name, set()).add(
                    endpoint.get("path", "/metrics") + str(endpoint.get("params", {}))
                )
    for monitor in prod.of("PodMonitor").values():
        selector = monitor["spec"]["selector"]["matchLabels"]
        containers = [
            c
            for w in prod.workloads()
            if dh.labels_match(selector, w["spec"]["template"]["metadata"]["labels"])
            for c in w["spec"]["template"]["spec"]["containers"]
        ]
        assert containers, f"PodMonitor {monitor['metadata']['name']} selects no pod"
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            _only_keys(endpoint, endpoint_keys, "PodMonitor endpoint")
            assert any(endpoint["port"] in _named_ports(c) for c in containers)
            assert endpoint["path"] == dh.METRICS_PATH
            for c in containers:
                scraped.setdefault(c["name"], set()).add(endpoint["path"])
    assert {"evaluator", "evolver", "ezspark-gateway"} <= set(scraped)
    (rmq,) = prod.of("RabbitmqCluster")
    assert "/metrics/detailed{'family': ['queue_coarse_metrics']}" in scraped[rmq]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_at_most_one_autoscaler_owns_the_evaluators(
    clusters: dict[str, dh.Cluster], overlay: str
) -> None:
    """prod uses KEDA, prod-hpa a plain HPA, dev none; autoscaled Deployments drop `replicas`."""
    cluster = clusters[overlay]
    owners = [("ScaledObject", n) for n in cluster.of("ScaledObject")]
    owners += [("HorizontalPodAutoscaler", n) for n in cluster.of("HorizontalPodAutoscaler")]
    expected = {"dev": 0, "prod": 1, "prod-hpa": 1}[overlay]
    assert len(owners) == expected, owners
    evaluator = cluster.of("Deployment")["ezspark-evaluator"]["spec"]
    assert ("replicas" in evaluator) == (expected == 0)
    for hpa in cluster.of("HorizontalPodAutoscaler").values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in cluster.of("Deployment")
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_networkpolicies_allow_exactly_the_needed_traffic(clusters: dict[str, dh.Cluster]) -> None:
    """Default-deny ingress plus gateway, AMQP (app pods), management (KEDA), metrics."""
    prod = clusters["prod"]
    policies = prod.of("NetworkPolicy")
    deny = [
        p
        for p in policies.values()
        if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
    ]
    assert deny
    assert deny[0]["spec"]["policyTypes"] == ["Ingress"]
    pod_labels = prod.pod_labels()

    def peer_matches(peer: dict[str, Any], source: tuple[str, Any] | None) -> bool:
        """Does one `from` peer admit ``source``: ("pod", labels) of this namespace,
        ("namespace", name), or None for any client anywhere?"""
        if source is None:
            return peer.get("ipBlock", {}).get("cidr") in ("0.0.0.0/0", "::/0")
        kind, value = source
        pods = peer.get("podSelector")
        namespaces = peer.get("namespaceSelector")
        if kind == "pod":
            return (
                namespaces is None
                and pods is not None
                and dh.labels_match(pods.get("matchLabels", {}), value)
            )
        return (
            namespaces is not None
            and dh.labels_match(
                namespaces.get("matchLabels", {}), {"kubernetes.io/metadata.name": value}
            )
            and not (pods or {}).get("matchLabels")
        )

    def allowed(labels: dict[str, str], port: int, source: tuple[str, Any] | None) -> bool:
        """Would traffic from ``source`` (None: anyone) reach ``port`` on pods with ``labels``?"""
        for policy in policies.values():
            if not dh.labels_match(policy["spec"]["podSelector"].get("matchLabels", {}), labels):
                continue
            for rule in policy["spec"].get("ingress", []):
                ports = [p["port"] for p in rule.get("ports", [])]
                if ports and port not in ports:
                    continue
                peers = rule.get("from")
                if peers is None or any(peer_matches(peer, source) for peer in peers):
                    return True
        return False

    for policy in policies.values():
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        assert any(dh.labels_match(selector, labels) for labels in pod_labels), policy["metadata"][
            "name"
        ]

    def labels_of(service: str) -> dict[str, str]:
        return _app_container(prod, service)[0]["spec"]["template"]["metadata"]["labels"]

    (rmq,) = prod.of("RabbitmqCluster")
    rabbit = prod.generated_services[rmq]["labels"]
    monitoring = ("namespace", "monitoring")
    keda = ("namespace", "keda")
    assert allowed(labels_of("gateway"), 8000, ("namespace", "ingress-nginx"))
    assert not allowed(labels_of("gateway"), 8000, None), "only the ingress controller"
    for service in APP:
        assert allowed(rabbit, 5672, ("pod", labels_of(service))), service
    assert allowed(rabbit, 15672, keda), "KEDA reads the task queues over the management API"
    assert not allowed(rabbit, 5672, keda), "KEDA needs no AMQP"
    assert not allowed(rabbit, 15672, None), "the management API must not be open to everyone"
    assert allowed(rabbit, 15692, monitoring)
    assert allowed(labels_of("evaluator"), 9101, monitoring)
    assert allowed(labels_of("evolver"), 9102, monitoring)
    assert not allowed(labels_of("evaluator"), 9101, None), "evaluator metrics must not be public"
    assert not allowed(rabbit, 5672, None), "AMQP must not be open to everyone"
    assert not allowed(rabbit, 5672, ("namespace", "default")), "AMQP open to other namespaces"


# ------------------------------------------------------------------ broker users
def test_broker_users_have_the_least_privilege_of_the_code(clusters: dict[str, dh.Cluster]) -> None:
    """prod: a topology-operator User and Permission per service with the regexes of
    permissions.py, the gateway's issuer an admin without vhost access; dev: the broker's
    initContainer renders the shared definitions with every password from the Secret."""
    prod = clusters["prod"]
    for kind, permission in SERVICE_PERMISSIONS.items():
        spec = prod.of("Permission")[f"ezspark-{kind}"]["spec"]
        assert spec["userReference"] == {"name": f"ezspark-{kind}"}
        assert (spec["vhost"], spec["permissions"]) == ("/", permission.as_dict())
        assert spec["rabbitmqClusterReference"] == {"name": "ezspark-rabbitmq"}
    assert prod.of("User")["ezspark-issuer"]["spec"]["tags"] == ["administrator"]
    assert "ezspark-issuer" not in prod.of("Permission")
    _, gateway = _app_container(prod, "gateway")
    env = prod.container_env(gateway, "prod/gateway")
    issuer = prod.generated_secrets["ezspark-issuer-user-credentials"]
    assert env["EZSPARK_BROKER_ADMIN_USER"] == issuer["username"]
    dev = clusters["dev"]
    (init,) = dev.of("StatefulSet")["rabbitmq"]["spec"]["template"]["spec"]["initContainers"]
    init_env = dev.container_env(init, "dev/rabbitmq-init")
    (definitions,) = [n for n in dev.of("ConfigMap") if n.startswith("ezspark-rabbitmq-defin")]
    files = dev.configmap_data(definitions) or {}
    placeholders = set(re.findall(r"@([A-Z_]+)@", files["definitions.template.json"]))
    assert placeholders <= set(init_env), placeholders - set(init_env)
    assert init_env["EZSPARK_GATEWAY_BROKER_PASSWORD"] == SERVICE_PASSWORDS["gateway"]
    assert "load_definitions" in files["20-ezspark.conf"]
