"""Issue 14's production deployment, checked offline: PostgreSQL from a Secret, Ingress with
TLS, PDBs, alerts and dashboard panels on real metrics, backups, metrics addresses, the
namespace kept apart and `make images`."""

from __future__ import annotations

import json
import re

try:
    from . import deploy_helpers as dh
    from . import test_deploy_k8s as k8s
except ImportError:  # tests/unit is not a package: pytest put it on sys.path
    import deploy_helpers as dh
    import test_deploy_k8s as k8s

# The rendered overlays are shared with test_deploy_k8s: its fixtures, used here by name.
clusters = k8s.clusters
workspace = k8s.workspace
_app_container = k8s._app_container
_settings = k8s._settings

REPO = dh.DEPLOY.parent
SOURCES = [*REPO.glob("services/*/src/**/*.py"), *REPO.glob("libs/ezspark_common/src/**/*.py")]


def _code_metrics() -> set[str]:
    """Every ezspark_* metric name the services declare."""
    names: set[str] = set()
    for path in SOURCES:
        names |= set(re.findall(r'"(ezspark_[a-z_]+)"', path.read_text()))
    return names


def _used_metrics(expr: str) -> set[str]:
    used = set(re.findall(r"\b(ezspark_[a-z_]+)", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in used}


def test_namespace_lives_outside_every_overlay() -> None:
    """The Namespace is its own file, applied once; no overlay renders it (see test_deploy_k8s)."""
    (doc,) = dh.load_yaml_docs((dh.DEPLOY / "k8s" / "namespace.yaml").read_text())
    assert doc["kind"] == "Namespace"
    assert doc["metadata"]["name"] == "ezspark"


def test_prod_gateway_reads_postgresql_from_the_operator_secret(
    clusters: dict[str, dh.Cluster],
) -> None:
    """prod: EZSPARK_DATABASE_URL comes from the CloudNativePG app Secret, never a ConfigMap,
    and the gateway runs several replicas and workers without a volume of its own."""
    prod = clusters["prod"]
    (db,) = prod.of("Cluster")
    assert prod.of("Cluster")[db]["spec"]["instances"] >= 2
    workload, container = _app_container(prod, "gateway")
    (var,) = [e for e in container["env"] if e["name"] == "EZSPARK_DATABASE_URL"]
    assert var["valueFrom"]["secretKeyRef"] == {"name": f"{db}-app", "key": "uri"}
    assert "value" not in var
    for name, data in ((n, prod.configmap_data(n) or {}) for n in prod.of("ConfigMap")):
        assert "EZSPARK_DATABASE_URL" not in data, name
    assert workload["spec"]["replicas"] >= 2
    assert workload["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "ezspark-gateway-data" not in prod.of("PersistentVolumeClaim")
    settings = _settings(prod, "gateway", "prod")
    assert settings.workers >= 2
    assert settings.database_url.startswith("postgresql://")


def test_ingress_serves_the_gateway_over_tls_and_the_gateway_trusts_only_it(
    clusters: dict[str, dh.Cluster],
) -> None:
    """The Ingress has TLS with a cert-manager issuer, routes to the gateway's port, and the
    gateway believes forwarded headers from the configured proxies only."""
    prod = clusters["prod"]
    (ingress,) = prod.of("Ingress").values()
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"]
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert hosts == set(tls["hosts"])
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = prod.of("Service")[backend["name"]]
    assert backend["port"]["name"] in [p["name"] for p in service["spec"]["ports"]]
    settings = _settings(prod, "gateway", "prod")
    assert settings.forwarded_allow_ips
    assert settings.cookie_secure
    assert not _settings(clusters["dev"], "gateway", "dev").forwarded_allow_ips


def test_disruption_budgets_cover_rabbitmq_and_the_evaluators(
    clusters: dict[str, dh.Cluster],
) -> None:
    """A PDB selects the evaluators in every overlay and the RabbitMQ pods in prod."""
    for name, cluster in clusters.items():
        selected = [
            labels
            for pdb in cluster.of("PodDisruptionBudget").values()
            for labels in cluster.pod_labels()
            if dh.labels_match(pdb["spec"]["selector"]["matchLabels"], labels)
        ]
        names = {labels.get("app.kubernetes.io/name") for labels in selected}
        assert "ezspark-evaluator" in names, name
        if name != "dev":
            assert "ezspark-rabbitmq" in names, name


REQUIRED_ALERT_SIGNALS = {
    "no evaluators": "ezspark_evaluator_tasks_in_flight",
    "task queue growing": 'rabbitmq_detailed_queue_messages{queue=~"ezspark\\\\.tasks',
    "re-dispatch rate": "ezspark_evolver_tasks_redispatched_total",
    "dead-letter queue": '.+\\\\.dead"}',
    "safeness mismatch": "ezspark_evolver_safeness_mismatches_total",
    "reconnects": "ezspark_broker_reconnects_total",
    "gateway 5xx": 'ezspark_gateway_http_requests_total{status=~"5..',
}


def test_alerts_cover_the_required_signals_with_real_metrics(
    clusters: dict[str, dh.Cluster],
) -> None:
    """The PrometheusRule alerts on every signal of issue 14, only on metrics the code exports."""
    (rule,) = clusters["prod"].of("PrometheusRule").values()
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    exprs = " ".join(a["expr"] for a in alerts)
    missing = [k for k, needle in REQUIRED_ALERT_SIGNALS.items() if needle not in exprs]
    assert not missing, missing
    known = _code_metrics()
    for alert in alerts:
        assert alert["alert"], alert
        assert alert["annotations"]["summary"], alert
        assert alert["expr"].count("(") == alert["expr"].count(")"), alert["alert"]
        unknown = {m for m in _used_metrics(alert["expr"]) if m not in known}
        assert not unknown, f"{alert['alert']}: {unknown}"


def test_dashboard_shows_gateway_reconnects_dead_letters_quarantines_and_up() -> None:
    """Grafana has panels for the gateway, broker reconnects, dead-letter queues,
    quarantines and scrape targets, on metrics the code exports."""
    dashboard = json.loads((dh.DEPLOY / "grafana" / "dashboards" / "ezspark.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    text = " ".join(exprs)
    for needle in (
        'ezspark_gateway_http_requests_total{status=~"5..',
        "ezspark_gateway_http_request_duration_seconds_bucket",
        "ezspark_broker_reconnects_total",
        '.+\\\\.dead"}',
        "ezspark_evolver_quarantined_evaluators_total",
        "up{",
    ):
        assert needle in text, needle
    unknown = {m for e in exprs for m in _used_metrics(e)} - _code_metrics()
    assert not unknown, unknown


def test_backups_cover_the_database_and_the_checkpoints(clusters: dict[str, dh.Cluster]) -> None:
    """prod has scheduled backups of the gateway's database (its Secret) and of the
    evolvers' checkpoint claim, onto a claim of their own."""
    prod = clusters["prod"]
    jobs = prod.of("CronJob").values()
    pods = [j["spec"]["jobTemplate"]["spec"]["template"]["spec"] for j in jobs]
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for pod in pods
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert {"ezspark-evolver-data", "ezspark-backup"} <= claims
    assert claims <= set(prod.of("PersistentVolumeClaim"))
    secrets = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for pod in pods
        for c in pod["containers"]
        for e in c.get("env", [])
        if "valueFrom" in e
    }
    (db,) = prod.of("Cluster")
    assert f"{db}-app" in secrets
    for job in jobs:
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        assert job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"][
            "runAsNonRoot"
        ]


def test_evaluators_run_one_blas_thread(clusters: dict[str, dh.Cluster]) -> None:
    """OMP_NUM_THREADS=1 reaches the evaluator containers of every overlay."""
    for name, cluster in clusters.items():
        _, container = _app_container(cluster, "evaluator")
        assert cluster.container_env(container, name)["OMP_NUM_THREADS"] == "1", name


def test_metrics_listen_on_loopback_unless_a_deployment_scrapes_them(
    clusters: dict[str, dh.Cluster],
) -> None:
    """The evolver and evaluator metrics default to 127.0.0.1; the overlays, which scrape
    them from Prometheus, set 0.0.0.0 explicitly."""
    for service in ("evolver", "evaluator"):
        assert dh.load_settings(dh.settings_class(service), {}).metrics_host == "127.0.0.1"
        for name, cluster in clusters.items():
            assert _settings(cluster, service, name).metrics_host == "0.0.0.0", (name, service)


def test_make_images_builds_the_three_targets() -> None:
    """`make images` builds every Dockerfile target with a documented tag."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nimages:", 1)[1].split("\n\n", 1)[0]
    targets = set(re.findall(r"^FROM .* AS (\w+)$", (REPO / "Dockerfile").read_text(), re.M))
    for service in ("gateway", "evolver", "evaluator"):
        assert service in targets
    assert "--target $$s" in recipe or all(f"--target {s}" in recipe for s in targets)
    assert "gateway evolver evaluator" in recipe
