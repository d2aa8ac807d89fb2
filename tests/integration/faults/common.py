"""Helpers of the fault, abuse and load tests, on top of the service tests' harness.

Reused, not duplicated: ``tests.integration.services.harness`` (configs, the embedded
reference run, ``assert_same_run``, bounded ``wait_until``) and ``…services.procs`` (real
service processes with JSON logs and HTTP metrics).  Added here: a private RabbitMQ vhost,
a private PostgreSQL database, a gateway process with a signed-up user, RabbitMQ
stop/start, and the figures file the tests fill in for ``docs/reliability.md``.

Every needed service or tool that is missing FAILS the test (never skips it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.integration.services.harness import require_rabbitmq
from tests.integration.services.procs import (
    Proc,
    free_port,
    fresh_vhost,
    rabbitmqctl,
    scrape_metric,
    service_env,
)
from tests.support.configs import REPO
from tests.support.waiting import wait_until

FAULT_ENVS = "tests.integration.faults.fault_envs"
PG_ADMIN_URL = os.environ.get(
    "EZSPARK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RESULTS_DIR = Path(os.environ.get("EZSPARK_FAULTS_RESULTS_DIR", REPO / "benchmarks" / "results"))
PASSWORD = "correct horse battery staple"
# The broker adapter's log events (ezspark_common/broker/rabbitmq.py).
BROKER_LOST = "connection to RabbitMQ lost"
BROKER_RETRY = "RabbitMQ not reachable, retrying"
BROKER_CONNECTED = "connected to RabbitMQ"


# ----- figures --------------------------------------------------------------------------


def record_figures(name: str, figures: dict[str, Any]) -> Path:
    """Merge ``figures`` under ``name`` into ``<results>/faults.json``; print them too.

    The file is git-ignored (``benchmarks/results/*.json``); docs/reliability.md quotes it.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "faults.json"
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    data[name] = {**figures, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"\n[figures] {name}: {json.dumps(figures, sort_keys=True)}")
    return path


# ----- tools and infrastructure -----------------------------------------------------------


def require_tool(name: str) -> str:
    """The tool's path; FAIL (not skip) when it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH; the fault tests need it", pytrace=False)
    return path


def rabbitmq_up() -> bool:
    """The node answers and the RabbitMQ application (AMQP listener) runs."""
    checks = (
        ["rabbitmq-diagnostics", "-q", "ping"],
        ["rabbitmq-diagnostics", "-q", "check_running"],
    )
    return all(
        subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0
        for cmd in checks
    )


@contextmanager
def rabbitmq_stopped() -> Iterator[dict[str, float]]:
    """``rabbitmqctl stop_app`` for the duration of the block; ALWAYS ``start_app`` and wait
    for ``rabbitmq-diagnostics -q ping`` afterwards.  Yields a dict that gets the wall-clock
    times ``down`` (stop_app returned) and, after the block, ``up`` (start_app returned)."""
    require_tool("rabbitmqctl")
    require_tool("rabbitmq-diagnostics")
    times: dict[str, float] = {}
    try:
        rabbitmqctl("stop_app")
        times["down"] = time.time()
        yield times
    finally:
        started = subprocess.run(
            ["rabbitmqctl", "start_app"], capture_output=True, text=True, timeout=120, check=False
        )
        times["up"] = time.time()
        wait_until(rabbitmq_up, 120, "RabbitMQ to come back after start_app")
        assert started.returncode == 0, f"start_app failed: {started.stdout}{started.stderr}"


@contextmanager
def private_vhost() -> Iterator[str]:
    """A broker URL on a fresh RabbitMQ vhost, deleted afterwards; a broker a test stopped
    and did not restore is started again first, so the vhost can be deleted."""
    require_rabbitmq()
    require_tool("rabbitmqctl")
    with fresh_vhost("faults") as url:
        try:
            yield url
        finally:
            if not rabbitmq_up():  # a test stopped the broker and died before restoring it
                subprocess.run(
                    ["rabbitmqctl", "start_app"], capture_output=True, timeout=120, check=False
                )
                wait_until(rabbitmq_up, 120, "RabbitMQ to come back")


@contextmanager
def private_database() -> Iterator[str]:
    """URL of a fresh PostgreSQL database (the production database), dropped afterwards."""
    name = f"ezspark_test_faults_{uuid.uuid4().hex[:12]}"

    def admin() -> psycopg.Connection:
        try:
            return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            pytest.fail(f"PostgreSQL unreachable at {PG_ADMIN_URL!r}: {exc}", pytrace=False)

    with admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# ----- processes ---------------------------------------------------------------------------


@dataclass
class GatewayProc:
    """A gateway process and the base URL it serves."""

    proc: Proc
    base: str

    def ready(self) -> bool:
        """GET /readyz answers 200 (database and broker up)."""
        try:
            return httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, token: str | None = None, timeout: float = 10) -> httpx.Client:
        """A client on the base URL, with a bearer token if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, timeout=timeout, headers=headers)

    def signup(self, username: str) -> str:
        """Sign up ``username`` and log in; its session token."""
        body = {"username": username, "password": PASSWORD}
        with self.client() as api:
            resp = api.post("/api/auth/signup", json=body)
            assert resp.status_code == 202, resp.text
            resp = api.post("/api/auth/login", json=body)
        assert resp.status_code == 200, resp.text
        token: str = resp.json()["token"]["token"]
        return token

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample of the gateway's /metrics (0 if absent)."""
        return scrape_metric(f"{self.base}/metrics", name, labels)


def start_gateway(
    tmp: Path,
    procs: list[Proc],
    broker_url: str,
    database_url: str | None = None,
    name: str = "gateway",
    os_env: dict[str, str] | None = None,
    **settings: Any,
) -> GatewayProc:
    """A gateway process on a free port (SQLite in ``tmp`` unless ``database_url``); waits
    until /readyz answers 200.  ``os_env`` sets plain environment variables (PYTHONPATH)."""
    port = free_port()
    env = service_env(
        broker_url=broker_url,
        host="127.0.0.1",
        port=port,
        metrics_port=0,
        database_url=database_url or f"sqlite:///{tmp / (name + '.db')}",
        **settings,
    )
    proc = Proc("ezspark-gateway", tmp / f"{name}.log", {**env, **(os_env or {})})
    procs.append(proc)
    gw = GatewayProc(proc, f"http://127.0.0.1:{port}")

    def ready() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(
                f"gateway exited {proc.popen.returncode}: {proc.log_path.read_text()[-3000:]}"
            )
        return gw.ready()

    wait_until(ready, 60, "the gateway to be ready")
    return gw


def evolver_proc(
    tmp: Path,
    procs: list[Proc],
    broker_url: str,
    name: str = "evolver",
    os_env: dict[str, str] | None = None,
    **settings: Any,
) -> Proc:
    """An evolver process (data in ``tmp/<name>-data``).  It loads no environment plug-in:
    the evolver never builds an environment, the evaluators do."""
    options: dict[str, Any] = {"task_batch_size": 4, "task_timeout_s": 30, **settings}
    env = service_env(
        broker_url=broker_url, data_dir=tmp / f"{name}-data", metrics_port=free_port(), **options
    )
    proc = Proc("ezspark-evolver", tmp / f"{name}.log", {**env, **(os_env or {})})
    procs.append(proc)
    return proc


def evaluator_proc(
    tmp: Path,
    procs: list[Proc],
    broker_url: str,
    name: str,
    envs: str,
    os_env: dict[str, str] | None = None,
    **settings: Any,
) -> Proc:
    """An evaluator process called ``name`` that knows the fault plug-ins and serves the
    environments ``envs`` (comma-separated ids), announcing itself every second."""
    options: dict[str, Any] = {
        "env_modules": f"{FAULT_ENVS},tests.integration.services.slow_envs",
        "announce_interval_s": 1.0,
        **settings,
    }
    env = service_env(
        broker_url=broker_url, evaluator_id=name, metrics_port=free_port(), envs=envs, **options
    )
    proc = Proc("ezspark-evaluator", tmp / f"{name}.log", {**env, **(os_env or {})})
    procs.append(proc)
    return proc


def alive(proc: Proc) -> bool:
    """The process has not exited."""
    return proc.popen.poll() is None


def logged(proc: Proc, event: str) -> list[dict[str, Any]]:
    """The process's JSON log lines with ``event``."""
    return [r for r in proc.logs() if r.get("event") == event]


def log_time(record: dict[str, Any]) -> float:
    """A JSON log line's timestamp (structlog's UTC ISO format) as a Unix time."""
    from datetime import datetime

    return datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()


def wait_served(api: httpx.Client, env_id: str, evaluators: int = 1, timeout: float = 30) -> None:
    """Wait until the gateway (``GET /api/environments``) has heard at least ``evaluators``
    live evaluators announce ``env_id``: before that it cannot check a config naming an
    environment it cannot build itself, and refuses it."""

    def served() -> bool:
        items = api.get("/api/environments").json()["items"]
        return any(e["env_id"] == env_id and e["evaluators"] >= evaluators for e in items)

    wait_until(served, timeout, f"the gateway to hear {evaluators} evaluator(s) of {env_id}")


def training_end(api: httpx.Client, training_id: str, timeout: float) -> dict[str, Any]:
    """Poll the gateway until the training is finished/failed/stopped; its detail."""

    def ended() -> dict[str, Any] | None:
        detail: dict[str, Any] = api.get(f"/api/trainings/{training_id}").json()
        return detail if detail["status"] in ("finished", "failed", "stopped") else None

    result: dict[str, Any] = wait_until(ended, timeout, f"training {training_id} to end")
    return result
