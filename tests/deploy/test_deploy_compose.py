"""Container images and the docker-compose stack: Dockerfile, docker-compose.yml, Prometheus
and Grafana provisioning agree with each other and with the services' settings classes."""

from __future__ import annotations

import ast
import json
import re
import secrets
import subprocess
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

REPO = dh.REPO
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DERIVED_DOCKERFILE = dh.DEPLOY / "docker" / "evaluator-custom-env.Dockerfile"
PROMETHEUS_CONFIG = dh.DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = dh.DEPLOY / "grafana" / "dashboards" / "ezspark.json"
APP_SERVICES = tuple(dh.SERVICES)
REQUIRED_SECRETS = (
    "RABBITMQ_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "EZSPARK_EVOLVER_BROKER_PASSWORD",
    "EZSPARK_GATEWAY_BROKER_PASSWORD",
    "EZSPARK_EVALUATOR_BROKER_PASSWORD",
    "EZSPARK_ISSUER_PASSWORD",
)

# Every metric the services export (docs of the metrics modules), and RabbitMQ's own.
SERVICE_METRICS = {
    "ezspark_evaluator_genomes_total",
    "ezspark_evaluator_env_steps_total",
    "ezspark_evaluator_task_seconds",
    "ezspark_evaluator_errors_total",
    "ezspark_evaluator_tasks_in_flight",
    "ezspark_evolver_generations_total",
    "ezspark_evolver_generation_seconds",
    "ezspark_evolver_tasks_in_flight",
    "ezspark_evolver_tasks_redispatched_total",
    "ezspark_evolver_safeness_checks_total",
    "ezspark_evolver_safeness_mismatches_total",
    "ezspark_evolver_population",
    "ezspark_evolver_species",
    "ezspark_evolver_best_fitness",
    "ezspark_broker_poison_messages_total",
    "ezspark_broker_reconnects_total",
    "ezspark_evolver_quarantined_evaluators_total",
    "ezspark_gateway_http_requests_total",
    "ezspark_gateway_http_request_duration_seconds",
}
HISTOGRAMS = {
    "ezspark_evaluator_task_seconds",
    "ezspark_evolver_generation_seconds",
    "ezspark_gateway_http_request_duration_seconds",
}
RABBITMQ_METRICS = {
    "rabbitmq_detailed_queue_messages_ready",
    "rabbitmq_queue_messages_ready",
    # queue_coarse_metrics: ready + unacknowledged, what KEDA counts over http
    "rabbitmq_detailed_queue_messages",
    "rabbitmq_queue_messages",
}
QUOTA_VARS = (
    "EZSPARK_QUOTA_ACTIVE_TRAININGS",
    "EZSPARK_QUOTA_WORK_PER_GENERATION",
    "EZSPARK_QUOTA_POPULATION",
)


# ------------------------------------------------------------------ fixtures
def _env_file(tmp: Path, **overrides: str) -> Path:
    """.env.example with the required secrets filled in by fresh random values."""
    values = {name: secrets.token_hex(16) for name in REQUIRED_SECRETS}
    values.update(overrides)
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values[key]}" if key in values and "=" in line else line)
    path = tmp / "test.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def _compose(tmp: Path, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*dh.compose_command(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args],
        cwd=REPO,
        env=dh.clean_env(tmp),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """docker-compose.yml as the real Compose implementation resolves it."""
    tmp = tmp_path_factory.mktemp("compose")
    proc = _compose(tmp, _env_file(tmp), "config")
    assert proc.returncode == 0, f"compose config failed:\n{proc.stderr}"
    return dh.load_yaml_docs(proc.stdout)[0]


@pytest.fixture(scope="module")
def stages() -> dict[str, dict[str, Any]]:
    return dh.dockerfile_stages(DOCKERFILE)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host part, container port) for each published port, short or long syntax."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append(
                (f"{port.get('host_ip', '')}:{port.get('published', '')}", int(port["target"]))
            )
        else:
            spec = str(port).split("/")[0]
            host, _, target = spec.rpartition(":")
            found.append((host, int(target)))
    return found


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) per volume entry, short or long syntax."""
    found = []
    for vol in service.get("volumes", []):
        if isinstance(vol, dict):
            found.append((str(vol.get("source", "")), str(vol["target"])))
        else:
            parts = str(vol).split(":")
            found.append((parts[0], parts[1]))
    return found


def _duration_s(value: str | int | float) -> float:
    """A Compose duration (`90s`, `1m30s`, `1h`, `500ms`; bare numbers are seconds)."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", value)
    assert parts, f"not a duration: {value!r}"
    assert "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def _container_env(compose: dict[str, Any], stages: dict[str, Any], name: str) -> dict[str, str]:
    """Image ENV (Dockerfile target) overridden by the compose service's environment."""
    service = compose["services"][name]
    env = dict(dh.stage_env(stages, service["build"]["target"]).items())
    env.pop("PATH", None)
    env.update(_env(service))
    return env


# ------------------------------------------------------------------ compose validity
def test_compose_file_passes_real_compose_validator(tmp_path: Path) -> None:
    """`docker-compose config -q` (a real Compose implementation) accepts docker-compose.yml."""
    proc = _compose(tmp_path, _env_file(tmp_path), "config", "-q")
    assert proc.returncode == 0, proc.stderr


def test_compose_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    """With .env.example as-is (blank passwords) Compose refuses to run: no default credentials."""
    proc = _compose(tmp_path, ENV_EXAMPLE, "config", "-q")
    assert proc.returncode != 0, "compose accepted the stack with empty passwords"
    assert "RABBITMQ_PASSWORD" in proc.stderr or "GRAFANA_ADMIN_PASSWORD" in proc.stderr


def test_env_example_holds_no_secret() -> None:
    """.env.example leaves every password blank and never mentions guest credentials."""
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    for name in REQUIRED_SECRETS:
        assert values.get(name) == "", f"{name} must be present and blank in .env.example"
    assert values["RABBITMQ_USER"] not in ("", "guest")
    assert "guest" not in COMPOSE_FILE.read_text()


def test_rabbitmq_service_has_plugins_healthcheck_and_env_credentials(
    compose: dict[str, Any],
) -> None:
    """RabbitMQ: management + prometheus plugins, `rabbitmq-diagnostics -q ping`, .env creds."""
    rmq = compose["services"]["rabbitmq"]
    assert rmq["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    plugins_mount = {t: s for s, t in _mounts(rmq)}["/etc/rabbitmq/enabled_plugins"]
    plugins = Path(plugins_mount).read_text()
    assert re.fullmatch(r"\[[a-z_,\s]+\]\.\s*", plugins), plugins
    assert {"rabbitmq_management", "rabbitmq_prometheus"} <= set(
        re.findall(r"rabbitmq_\w+", plugins)
    )
    raw = dh.load_yaml(COMPOSE_FILE)["services"]["rabbitmq"]["environment"]
    assert raw["RABBITMQ_DEFAULT_USER"].startswith("${RABBITMQ_USER:?")
    assert raw["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD:?")


def test_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    """Every depends_on uses `condition: service_healthy` on a service that has a healthcheck."""
    services = compose["services"]
    stages = dh.dockerfile_stages(DOCKERFILE)
    for name in (*APP_SERVICES, "prometheus", "grafana"):
        deps = services[name].get("depends_on")
        assert deps, f"{name} has no depends_on"
        for dep, cond in deps.items():
            assert cond["condition"] == "service_healthy", (name, dep, cond)
            target = services[dep].get("build", {}).get("target")
            has_check = "healthcheck" in services[dep] or (
                target and dh.stage_setting(stages, target, "HEALTHCHECK")
            )
            assert has_check, f"{name} waits for {dep}, which has no healthcheck"
    for name in APP_SERVICES:
        assert "rabbitmq" in services[name]["depends_on"]


def test_evaluator_scales_with_compose(compose: dict[str, Any]) -> None:
    """Evaluator: deploy.replicas 2, nothing that breaks `--scale` (container_name, host ports)."""
    evaluator = compose["services"]["evaluator"]
    assert evaluator["deploy"]["replicas"] == 2
    assert "container_name" not in evaluator
    assert not evaluator.get("ports"), "a fixed host port would clash between replicas"
    assert "scale" not in evaluator  # conflicts with deploy.replicas in Compose v2
    for name, service in compose["services"].items():
        assert "container_name" not in service, name


def test_evolver_runs_active_and_standby_on_one_volume(
    compose: dict[str, Any], stages: dict[str, Any]
) -> None:
    """Two evolver replicas share the named volume holding data_dir and its leader lock."""
    services = compose["services"]
    evolvers = [n for n, s in services.items() if s.get("build", {}).get("target") == "evolver"]
    replicas = sum(int(services[n].get("deploy", {}).get("replicas", 1)) for n in evolvers)
    assert replicas == 2, f"want an active and a standby evolver, got {replicas} ({evolvers})"
    volumes = set()
    for name in evolvers:
        service = services[name]
        assert "container_name" not in service, name
        assert not service.get("ports"), f"{name}: a fixed host port would clash"
        assert "scale" not in service  # conflicts with deploy.replicas in Compose v2
        settings = dh.check_service_env("evolver", _container_env(compose, stages, name), name)
        mounts = {t: s for s, t in _mounts(service)}
        assert mounts.get(settings.data_dir) in compose["volumes"], "data_dir: a named volume"
        lock = Path(settings.leader_lock_path)
        assert Path(settings.data_dir) in lock.parents, f"{name}: lock {lock} off the volume"
        volumes.add(mounts[settings.data_dir])
    assert volumes == {"evolver-data"}, f"the evolvers must share one volume, got {volumes}"


def test_evaluator_stop_grace_exceeds_its_stop_timeout(
    compose: dict[str, Any], stages: dict[str, Any]
) -> None:
    """Compose waits longer (stop_grace_period) than the evaluator's EZSPARK_STOP_TIMEOUT_S."""
    service = compose["services"]["evaluator"]
    env = _container_env(compose, stages, "evaluator")
    assert "EZSPARK_STOP_TIMEOUT_S" in env, "set the stop timeout explicitly"
    settings = dh.check_service_env("evaluator", env, "compose evaluator")
    grace = _duration_s(service.get("stop_grace_period", "10s"))  # Compose's default
    assert grace > settings.stop_timeout_s > 0, (grace, settings.stop_timeout_s)


def test_gateway_and_evolver_get_the_same_quotas(
    compose: dict[str, Any], stages: dict[str, Any]
) -> None:
    """Gateway and evolver both set every EZSPARK_QUOTA_* variable, to the same values."""
    envs = {name: _container_env(compose, stages, name) for name in ("gateway", "evolver")}
    for name, env in envs.items():
        missing = [v for v in QUOTA_VARS if v not in env]
        assert not missing, f"{name}: quotas not set: {missing}"
    for var in QUOTA_VARS:
        assert envs["gateway"][var] == envs["evolver"][var], var
    quotas = {n: dh.check_service_env(n, e, n).quotas for n, e in envs.items()}
    assert quotas["gateway"] == quotas["evolver"]


def test_container_env_is_exactly_what_settings_read(
    compose: dict[str, Any], stages: dict[str, Any]
) -> None:
    """Each service's env (image ENV + compose) has only real EZSPARK_* fields, and they parse."""
    rabbit_env = _env(compose["services"]["rabbitmq"])
    for name in APP_SERVICES:
        env = _container_env(compose, stages, name)
        extra = sorted(
            k
            for k in env
            if not k.startswith(("EZSPARK_", "PYTHON"))
            and k not in dh.RUNTIME_VARS
            and k not in dh.settings_env_names(dh.settings_class(name))
        )
        assert not extra, f"{name}: variables no service reads: {extra}"
        settings = dh.check_service_env(name, env, f"compose service {name}")
        url = urlsplit(settings.broker_url)
        assert url.scheme == "amqp"
        assert url.hostname == "rabbitmq"
        assert url.port == 5672
        assert url.hostname in compose["services"]
        # Least privilege: each service connects as its own broker user (definitions below).
        assert unquote(url.username or "") == f"ezspark-{name}"
        password = rabbit_env[f"EZSPARK_{name.upper()}_BROKER_PASSWORD"]
        assert unquote(url.password or "") == password
        assert unquote(url.path[1:]) == "/"
        assert settings.broker_declares is (name == "evolver")  # the evolver owns the topology


def test_broker_users_are_the_least_privilege_ones_of_the_code(compose: dict[str, Any]) -> None:
    """The definitions RabbitMQ imports at boot give each service the permissions of
    ``permissions.py``, the issuer (the gateway's management user) an admin tag and no
    vhost access, and every password comes from .env (the template holds placeholders)."""
    rmq = compose["services"]["rabbitmq"]
    mounts = {t: Path(src) for src, t in _mounts(rmq)}
    template_text = mounts["/etc/ezspark/definitions.template.json"].read_text()
    script = mounts["/etc/ezspark/render-definitions.sh"].read_text()
    conf = mounts["/etc/rabbitmq/conf.d/20-ezspark.conf"].read_text()
    assert rmq["entrypoint"] == ["/bin/sh", "/etc/ezspark/render-definitions.sh"]
    assert rmq["command"] == ["docker-entrypoint.sh", "rabbitmq-server"]  # the image's own
    assert "load_definitions = /var/lib/rabbitmq/ezspark-definitions.json" in conf
    assert "out=/var/lib/rabbitmq/ezspark-definitions.json" in script
    raw_env = dh.load_yaml(COMPOSE_FILE)["services"]["rabbitmq"]["environment"]
    for placeholder in set(re.findall(r"@([A-Z_]+)@", template_text)):
        assert f"s/@{placeholder}@/${{{placeholder}:?}}/g" in script, placeholder
        assert placeholder in raw_env, placeholder
    definitions = json.loads(template_text)
    perms = {p["user"]: p for p in definitions["permissions"]}
    for kind, permission in SERVICE_PERMISSIONS.items():
        assert perms[f"ezspark-{kind}"] == {
            "user": f"ezspark-{kind}",
            "vhost": "/",
            **permission.as_dict(),
        }
    users = {u["name"]: u for u in definitions["users"]}
    assert users["ezspark-issuer"]["tags"] == "administrator"
    assert "ezspark-issuer" not in perms
    assert all(re.fullmatch(r"@[A-Z_]+@", u["password"]) for u in users.values())
    gateway = _env(compose["services"]["gateway"])
    assert gateway["EZSPARK_BROKER_ADMIN_USER"] == "ezspark-issuer"
    assert gateway["EZSPARK_BROKER_ADMIN_PASSWORD"] == _env(rmq)["EZSPARK_ISSUER_PASSWORD"]
    assert urlsplit(gateway["EZSPARK_BROKER_ADMIN_URL"]).hostname == "rabbitmq"


def test_ports_volumes_and_images_agree_with_settings(
    compose: dict[str, Any], stages: dict[str, Any]
) -> None:
    """Gateway publishes its settings port on 0.0.0.0; evolver's data_dir is a named volume."""
    services = compose["services"]
    gateway = dh.check_service_env("gateway", _container_env(compose, stages, "gateway"), "gw")
    assert gateway.port == 8000
    assert gateway.host == "0.0.0.0"
    assert [target for _, target in _ports(services["gateway"])] == [gateway.port]
    assert gateway.database_url.startswith("sqlite:////data/")
    assert ("gateway-data", "/data") in _mounts(services["gateway"])

    evolver = dh.check_service_env("evolver", _container_env(compose, stages, "evolver"), "ev")
    mounts = {t: s for s, t in _mounts(services["evolver"])}
    assert mounts.get(evolver.data_dir) in compose["volumes"], "data_dir must be a named volume"
    assert evolver.metrics_port == 9102
    evaluator = dh.check_service_env("evaluator", _container_env(compose, stages, "evaluator"), "e")
    assert evaluator.metrics_port == 9101
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"].split(":")[0] == f"ezspark/{name}"
        assert service["build"]["target"] == name
        assert name in stages
        assert Path(service["build"]["context"]).resolve() == REPO
        loaded = dh.load_settings(dh.settings_class(name), _container_env(compose, stages, name))
        exposed = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
        wanted = loaded.port if name == "gateway" else loaded.metrics_port
        assert wanted in exposed | {t for _, t in _ports(service)}, (name, wanted)


def test_bind_mounts_exist_and_secrets_stay_local(compose: dict[str, Any]) -> None:
    """Every bind-mounted file exists in the repo; published ports bind to localhost by default."""
    for name, service in compose["services"].items():
        for source, _ in _mounts(service):
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: missing bind source {source}"
        for host, _ in _ports(service):
            assert host.startswith("127.0.0.1:"), f"{name} publishes {host} beyond localhost"


# ------------------------------------------------------------------ Prometheus / Grafana
def test_prometheus_scrapes_every_service_and_rabbitmq(
    compose: dict[str, Any], stages: dict[str, Any]
) -> None:
    """prometheus.yml scrapes gateway, evolver, every evaluator replica and RabbitMQ :15692."""
    config = dh.load_yaml(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets: dict[str, set[str]] = {}
    for name, job in jobs.items():
        found = {t for sc in job.get("static_configs", []) for t in sc["targets"]}
        for sd in job.get("dns_sd_configs", []):
            found |= {f"{n}:{sd['port']}" for n in sd["names"]}
        targets[name] = found
    settings = {
        name: dh.load_settings(dh.settings_class(name), _container_env(compose, stages, name))
        for name in APP_SERVICES
    }
    expected = {
        "gateway": f"gateway:{settings['gateway'].port}",
        "evolver": f"evolver:{settings['evolver'].metrics_port}",
        "evaluator": f"evaluator:{settings['evaluator'].metrics_port}",
    }
    for target in expected.values():
        hits = [job for job, found in targets.items() if target in found]
        assert hits, f"no scrape job for {target}"
        assert all(jobs[j].get("metrics_path", "/metrics") == dh.METRICS_PATH for j in hits)
    for service in ("evaluator", "evolver"):  # both run several replicas
        job = next(j for j in jobs.values() if expected[service] in targets[j["job_name"]])
        assert job.get("dns_sd_configs"), f"{service} replicas must be discovered via DNS"
    rabbit = [j for j in jobs.values() if "rabbitmq:15692" in targets[j["job_name"]]]
    paths = {
        (j.get("metrics_path", "/metrics"), tuple(j.get("params", {}).get("family", [])))
        for j in rabbit
    }
    assert ("/metrics", ()) in paths
    assert ("/metrics/detailed", ("queue_coarse_metrics",)) in paths
    for found in targets.values():
        for target in found:
            host = target.rsplit(":", 1)[0]
            assert host == "localhost" or host in compose["services"], target
    mounts = {t: s for s, t in _mounts(compose["services"]["prometheus"])}
    assert Path(mounts["/etc/prometheus/prometheus.yml"]) == PROMETHEUS_CONFIG


def test_grafana_is_provisioned_with_datasource_and_dashboard(compose: dict[str, Any]) -> None:
    """Grafana gets the Prometheus datasource and loads the shared dashboard JSON."""
    grafana = compose["services"]["grafana"]
    mounts = {t: Path(s) for s, t in _mounts(grafana) if s.startswith("/")}
    provisioning = mounts["/etc/grafana/provisioning"]
    datasources = [
        ds
        for f in sorted((provisioning / "datasources").glob("*.y*ml"))
        for ds in dh.load_yaml(f)["datasources"]
    ]
    prom = [ds for ds in datasources if ds["type"] == "prometheus"]
    assert len(prom) == 1
    assert prom[0]["url"] == "http://prometheus:9090"
    assert prom[0].get("isDefault") is True
    providers = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for p in dh.load_yaml(f)["providers"]
    ]
    assert providers, "no dashboard provider"
    for provider in providers:
        local = mounts[provider["options"]["path"]]
        assert (local / DASHBOARD.name).exists()
        assert local == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (mounts[str(Path(home).parent)] / Path(home).name).exists()
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"], "admin password comes from .env"


def _exprs(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    return {
        panel["title"]: [t["expr"] for t in panel.get("targets", [])]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
    }


def test_dashboard_covers_the_required_views() -> None:
    """Dashboard has every required view (throughput, queue, fitness...) and no unknown metric."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    exprs = _exprs(dashboard)
    everything = " ".join(e for es in exprs.values() for e in es)

    def panel_with(*needles: str) -> list[str]:
        return [t for t, es in exprs.items() if all(any(n in e for e in es) for n in needles)]

    assert panel_with("ezspark_evaluator_genomes_total", "by (instance)")
    assert panel_with("ezspark_evaluator_env_steps_total", "by (instance)")
    # The autoscaling signal: ready + unacked summed over the task queues, no .dead queue.
    (selector,) = set(re.findall(r"rabbitmq_detailed_queue_messages\{([^}]*)\}", everything))
    matchers = re.findall(r'(\w+)(=~|!~|!=|=)"((?:[^"\\]|\\.)*)"', selector)
    assert matchers, selector
    assert all(label == "queue" for label, _, _ in matchers), selector

    def counted(queue: str) -> bool:
        """PromQL label matching: regexes are fully anchored; strings unescape backslashes."""
        verdicts = []
        for _, op, raw in matchers:
            value = re.sub(r"\\(.)", r"\1", raw)
            if op in ("=~", "!~"):
                verdicts.append(bool(re.fullmatch(value, queue)) == (op == "=~"))
            else:
                verdicts.append((queue == value) == (op == "="))
        return all(verdicts)

    assert all(counted(q) for q in dh.TASK_QUEUES), [q for q in dh.TASK_QUEUES if not counted(q)]
    assert not any(counted(q) for q in dh.OTHER_QUEUES), [q for q in dh.OTHER_QUEUES if counted(q)]
    assert panel_with("rabbitmq_detailed_queue_messages_ready", "by (queue)")
    assert panel_with("ezspark_evolver_generation_seconds_bucket")
    assert panel_with("ezspark_evolver_best_fitness", "by (training)")
    assert panel_with("ezspark_evaluator_errors_total", "by (kind)")
    assert panel_with("ezspark_broker_poison_messages_total")
    assert panel_with("ezspark_evolver_safeness_mismatches_total")

    used = set(re.findall(r"\b((?:ezspark|rabbitmq)_[a-z_]+)", everything))
    known = SERVICE_METRICS | RABBITMQ_METRICS
    known |= {f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")}
    assert used <= known, f"unknown metric names (typo?): {sorted(used - known)}"
    assert {m for m in SERVICE_METRICS if m not in HISTOGRAMS} <= used
    assert all(any(u.startswith(h) for u in used) for h in HISTOGRAMS)

    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    template_vars = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in template_vars
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            assert "$" not in target["expr"].replace("$__rate_interval", "").replace(
                "$__range", ""
            ).replace("$training", ""), target["expr"]


# ------------------------------------------------------------------ Dockerfile
def test_dockerfile_parses_with_buildkit_parser(stages: dict[str, Any]) -> None:
    """BuildKit's parser accepts the Dockerfiles and every instruction is a real one."""
    dockerfile = dh.require_module("dockerfile")
    valid = {c.upper() for c in dockerfile.all_cmds()}
    for path in (DOCKERFILE, DERIVED_DOCKERFILE):
        for cmd in dockerfile.parse_file(str(path)):
            assert cmd.cmd.upper() in valid, f"{path}:{cmd.start_line}: {cmd.original}"
    assert set(APP_SERVICES) <= set(stages)


@pytest.mark.parametrize("service", APP_SERVICES)
def test_image_is_slim_multistage_nonroot_with_healthcheck(
    stages: dict[str, Any], service: str
) -> None:
    """Each target: slim base, venv copied from a build stage, non-root USER, HEALTHCHECK."""
    assert "slim" in dh.base_image(stages, service), dh.base_image(stages, service)
    copies = [
        c
        for stage in dh.stage_chain(stages, service)
        for c in stage["commands"]
        if c.cmd == "COPY" and any(f.startswith("--from=") for f in c.flags)
    ]
    assert copies, f"{service}: nothing copied from a build stage (not multi-stage)"
    build_stage = copies[0].flags[0].split("=", 1)[1]
    assert build_stage in stages
    assert build_stage not in [s["name"] for s in dh.stage_chain(stages, service)]
    user = dh.stage_setting(stages, service, "USER")
    assert user is not None, f"{service}: no USER"
    name = user.value[0].split(":")[0]
    assert name not in ("root", "0"), f"{service} runs as root"
    health = dh.stage_setting(stages, service, "HEALTHCHECK")
    assert health is not None, f"{service}: no HEALTHCHECK"
    assert health.value[0] == "CMD", health.original
    installs = [
        c.original
        for stage in dh.stage_chain(stages, build_stage)
        for c in stage["commands"]
        if c.cmd == "RUN" and "pip install" in c.original
    ]
    assert any("libs/ezspark_common" in i for i in installs), "install the lib first"
    assert any(f"services/{service}" in i for i in installs)


@pytest.mark.parametrize("service", APP_SERVICES)
def test_only_the_evaluator_image_has_box2d_and_no_image_a_compiler(
    stages: dict[str, Any], service: str
) -> None:
    """box2d extra goes into the evaluator's build stage only; no toolchain in any runtime."""
    copies = [
        c.flags[0].split("=", 1)[1]
        for stage in dh.stage_chain(stages, service)
        for c in stage["commands"]
        if c.cmd == "COPY" and any(f.startswith("--from=") for f in c.flags)
    ]
    installs = " ".join(
        c.original
        for build in copies
        for stage in dh.stage_chain(stages, build)
        for c in stage["commands"]
        if c.cmd == "RUN"
    )
    has_box2d = re.search(r"libs/ezspark_common\[[^]]*\bbox2d\b", installs) is not None
    assert has_box2d == (service == "evaluator"), f"{service}: box2d extra installed={has_box2d}"
    runtime = " ".join(
        c.original for stage in dh.stage_chain(stages, service) for c in stage["commands"]
    )
    for tool in ("build-essential", "g++", "gcc", "swig"):
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", runtime), f"{service}: {tool}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_image_runs_the_service_console_script(stages: dict[str, Any], service: str) -> None:
    """CMD runs the service's console script, as declared in its pyproject.toml."""
    scripts = tomllib.loads((dh.SERVICE_DIRS[service] / "pyproject.toml").read_text())["project"][
        "scripts"
    ]
    cmd = dh.stage_setting(stages, service, "CMD")
    assert cmd is not None, f"{service}: no CMD"
    assert cmd.json, f"{service}: CMD must be exec form"
    assert cmd.value[0] == f"ezspark-{service}"
    assert cmd.value[0] in scripts


@pytest.mark.parametrize("service", APP_SERVICES)
def test_healthcheck_probes_the_settings_port(stages: dict[str, Any], service: str) -> None:
    """HEALTHCHECK is valid Python hitting /healthz (gateway) or /metrics on the settings port."""
    health = dh.stage_setting(stages, service, "HEALTHCHECK")
    argv = list(health.value[1:])
    assert argv[:2] == ["python", "-c"], argv
    code = argv[2]
    ast.parse(code)
    env = {k: v for k, v in dh.stage_env(stages, service).items() if k.startswith("EZSPARK_")}
    settings = dh.check_service_env(service, env, f"Dockerfile target {service}")
    if service == "gateway":
        assert dh.GATEWAY_LIVENESS in code
        assert "'EZSPARK_PORT', '8000'" in code
        assert settings.port == 8000
        assert settings.host == "0.0.0.0"
    else:
        assert dh.METRICS_PATH in code
        assert f"'EZSPARK_METRICS_PORT', '{settings.metrics_port}'" in code


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Translate one .dockerignore pattern (Go filepath.Match plus `**`) to a regex."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
            continue
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore semantics: the last pattern matching the path or a parent wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _dockerignore_regex(raw.lstrip("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_docker_build_context_contains_what_the_dockerfile_copies() -> None:
    """Every COPY source exists and survives .dockerignore; .venv, .git, .env stay out."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    dockerfile = dh.require_module("dockerfile")
    for cmd in dockerfile.parse_file(str(DOCKERFILE)):
        if cmd.cmd == "COPY" and not any(f.startswith("--from=") for f in cmd.flags):
            for source in cmd.value[:-1]:
                assert (REPO / source).exists(), source
                assert not _ignored(source.rstrip("/"), patterns), f"{source} is dockerignored"
                for f in (REPO / source).rglob("*.py"):
                    rel = f.relative_to(REPO).as_posix()
                    if "egg-info" not in rel and "__pycache__" not in rel:
                        assert not _ignored(rel, patterns), rel
    for secret_or_bulk in (".env", ".venv/bin/python", ".git/config", "tests/unit/x.py"):
        assert _ignored(secret_or_bulk, patterns), secret_or_bulk


def test_evaluator_image_takes_user_environment_packages(
    compose: dict[str, Any], stages: dict[str, Any]
) -> None:
    """EXTRA_PIP_PACKAGES build arg (wired to compose) and the derived-image example both work."""
    build = dh.stage_chain(stages, "build-evaluator")[0]
    args = [c for c in build["commands"] if c.cmd == "ARG"]
    assert any(a.value[0].startswith("EXTRA_PIP_PACKAGES") for a in args)
    assert any(
        c.cmd == "RUN" and "pip install $EXTRA_PIP_PACKAGES" in c.original
        for c in build["commands"]
    )
    assert "EXTRA_PIP_PACKAGES" in compose["services"]["evaluator"]["build"]["args"]
    derived = dh.dockerfile_stages(DERIVED_DOCKERFILE)
    (stage,) = derived.values()
    cmds = {c.cmd for c in stage["commands"]}
    assert {"USER", "RUN", "ENV"} <= cmds
    final_user = [c for c in stage["commands"] if c.cmd == "USER"][-1].value[0]
    assert final_user.split(":")[0] not in ("root", "0")
    env = dict(dh.stage_env(derived, next(iter(derived))).items())
    dh.check_service_env("evaluator", env, str(DERIVED_DOCKERFILE))
    assert "EZSPARK_ENV_MODULES" in env
    assert stage["global_args"]["BASE_IMAGE"].startswith("ezspark/evaluator:")


def test_deploy_docs_cover_every_path() -> None:
    """docs/deploy.md covers compose, k8s, scaling, queues, storage, quotas, sizing, custom envs."""
    doc = (REPO / "docs" / "deploy.md").read_text()
    for needle in (
        "docker compose up",
        "--scale evaluator=",
        "kubectl apply -k deploy/k8s/overlays/dev",
        "kubectl apply -k deploy/k8s/overlays/prod",
        "kubectl scale",
        "ScaledObject",
        "EXTRA_PIP_PACKAGES",
        "EZSPARK_ENV_MODULES",
        "Grafana",
        "broker.env",
        "ezspark.tasks.<env_id>",
        "EZSPARK_ENVS",
        "ReadWriteMany",
        "POSIX",
        ".leader.lock",
        *QUOTA_VARS,
        "## Sizing a cluster",
    ):
        assert needle in doc, f"docs/deploy.md does not mention {needle!r}"
