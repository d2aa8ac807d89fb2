"""Service processes for the tests: start real console scripts, read their logs/metrics.

A process gets our environment minus every ``EZSPARK_*`` variable, plus the values the test
passes (and ``PYTHONPATH`` = the repo, so test environment plug-ins import).  JSON log
lines go to a file the test can wait on; metrics are read over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.services.harness import SLOW_ENVS, URL
from tests.support.configs import REPO
from tests.support.waiting import wait_until

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(**values: Any) -> dict[str, str]:
    """The environment of a service process: ours minus EZSPARK_*, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EZSPARK_")}
    # The repository (for test-only environment modules), after whatever the caller set.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
    env.update({"EZSPARK_BROKER_URL": URL, "EZSPARK_LOG_JSON": "true", "EZSPARK_LOG_LEVEL": "INFO"})
    env.update({f"EZSPARK_{k.upper()}": str(v) for k, v in values.items()})
    return env


def scrape_metric(url: str, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample of a Prometheus endpoint, matched by name and labels (0 if absent)."""
    text = httpx.get(url, timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in (labels or {}).items()
            ):
                return float(sample.value)
    return 0.0


class Proc:
    """A service as a real process (console script), logging to a file."""

    def __init__(
        self, command: str, log_path: Path, env: dict[str, str], args: Sequence[str] = ()
    ) -> None:
        self.command = command
        self.log_path = log_path
        self.metrics_port = int(env.get("EZSPARK_METRICS_PORT", "0"))
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.popen = subprocess.Popen(
            [str(BIN / command), *args],
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def wait_log(self, event: str, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        """Wait for a log line with ``event`` (and ``fields``)."""

        def found() -> dict[str, Any] | None:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.command} exited {self.popen.returncode}: "
                    f"{self.log_path.read_text()[-3000:]}"
                )
            for rec in self.logs():
                if rec.get("event") == event and all(rec.get(k) == v for k, v in fields.items()):
                    return rec
            return None

        record: dict[str, Any] = wait_until(
            found, timeout, f"{self.command} to log {event!r} {fields}"
        )
        return record

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample from the process's /metrics (0 if absent)."""
        return scrape_metric(f"http://127.0.0.1:{self.metrics_port}/metrics", name, labels)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit code (SIGKILL after ``timeout``)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL, no clean-up at all."""
        self.popen.kill()
        self.popen.wait(10)
        self._log.close()


def evaluator_process(tmp: Path, name: str, prefix: str, envs: str, **settings: Any) -> Proc:
    """An evaluator process serving ``envs``; it can load the slow test environments
    unless ``env_modules`` says otherwise."""
    env = service_env(
        queue_prefix=prefix,
        evaluator_id=name,
        metrics_port=free_port(),
        envs=envs,
        **{"env_modules": SLOW_ENVS, "announce_interval_s": 1.0, **settings},
    )
    return Proc("ezspark-evaluator", tmp / f"{name}.log", env)


def evolver_process(tmp: Path, prefix: str, data_dir: Path, log_name: str, **settings: Any) -> Proc:
    """An evolver process keeping its data in ``data_dir``, with no environment plug-in:
    it must never need the user's environment."""
    env = service_env(
        queue_prefix=prefix,
        data_dir=data_dir,
        metrics_port=free_port(),
        **{"task_timeout_s": 30, **settings},
    )
    return Proc("ezspark-evolver", tmp / log_name, env)


@contextmanager
def processes() -> Iterator[list[Proc]]:
    """Collects started processes; any still running at the end is stopped."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.popen.poll() is None:
                proc.stop(15)


def vhost_url(vhost: str, url: str = URL) -> str:
    """``url`` pointing at another vhost."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


@contextmanager
def fresh_vhost(tag: str) -> Iterator[str]:
    """A new RabbitMQ vhost the broker URL's user may use; yields its URL, deletes it after.

    The gateway's queue names are fixed, so a stack with a gateway needs its own vhost.
    """
    vhost = f"ezspark-{tag}-{uuid.uuid4().hex[:10]}"
    user = unquote(urlsplit(URL).username or "guest")
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield vhost_url(vhost)
    finally:
        rabbitmqctl("delete_vhost", vhost)


def rabbitmqctl(*args: str) -> None:
    """Run rabbitmqctl; fail the test with its output if it fails."""
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stdout}{done.stderr}")
