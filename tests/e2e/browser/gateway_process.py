"""A real ``ezspark-gateway`` process for end-to-end tests, and a private RabbitMQ vhost.

``running_gateway`` starts the gateway on a free port with SQLite in a temporary folder and
waits for ``/healthz``; its log is attached to any start-up failure.  ``rabbit_vhost``
creates a throw-away RabbitMQ vhost (``rabbitmqctl``), so a test can publish evolver events
to the gateway's events queue without touching any other consumer, and deletes it after.
``EventFeed`` publishes real ``GenerationFinished`` / ``TrainingFinished`` messages there,
exactly as the evolver does.  Missing RabbitMQ or rabbitmqctl makes the test FAIL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ezspark_common.broker import Broker, BrokerError, connect
from ezspark_common.wire.messages import (
    EVENTS_QUEUE,
    GenerationFinished,
    GenerationProgressed,
    Message,
    SavedGenome,
    TrainingFailed,
    TrainingFinished,
    TrainingWaiting,
    WireGenome,
    encode,
)
from tests.integration.services.procs import fresh_vhost

RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
START_TIMEOUT_S = 30.0
# A CartPole controller: push the way the pole falls (inputs are -1..-4, outputs 0 and 1).
CHAMPION = WireGenome(
    key=7,
    node_ids=[0, 1],
    biases=[0.0, 0.0],
    innov=[0, 1, 2, 3],
    src=[-3, -4, -3, -4],
    dst=[1, 1, 0, 0],
    weight=[1.0, 1.0, -1.0, -1.0],
    enabled=[True] * 4,
)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Gateway:
    """A started gateway process."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the gateway's output, for failure messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _wait_ready(gw: Gateway) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _healthy(gw.url):
        if gw.proc.poll() is not None:
            pytest.fail(f"ezspark-gateway exited with {gw.proc.returncode}:\n{gw.log_tail()}")
        if time.monotonic() > deadline:
            _stop(gw)
            pytest.fail(f"ezspark-gateway not ready after {START_TIMEOUT_S}s:\n{gw.log_tail()}")
        time.sleep(0.1)


def _stop(gw: Gateway) -> None:
    if gw.proc.poll() is None:
        gw.proc.send_signal(signal.SIGTERM)
        try:
            gw.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gw.proc.kill()
            gw.proc.wait(timeout=10)


@contextmanager
def running_gateway(
    workdir: Path, broker_url: str = "memory://", **settings: Any
) -> Iterator[Gateway]:
    """Start ``ezspark-gateway`` (SQLite in ``workdir``, ``settings`` as ``EZSPARK_*``
    variables) and stop it with SIGTERM afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = (
        os.environ
        | {
            "EZSPARK_HOST": "127.0.0.1",
            "EZSPARK_PORT": str(port),
            "EZSPARK_DATABASE_URL": f"sqlite:///{workdir / 'gateway.db'}",
            "EZSPARK_BROKER_URL": broker_url,
            "EZSPARK_LOG_LEVEL": "WARNING",
            "EZSPARK_METRICS_PORT": "0",
        }
        | {f"EZSPARK_{k.upper()}": str(v) for k, v in settings.items()}
    )
    exe = Path(sys.executable).parent / "ezspark-gateway"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ezspark_gateway.main"]
    log = workdir / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
    gw = Gateway(url=f"http://127.0.0.1:{port}", proc=proc, log=log)
    try:
        _wait_ready(gw)
        yield gw
    finally:
        _stop(gw)


def api(url: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    """One JSON request to the gateway; the decoded answer (raises HTTPError on 4xx/5xx)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=15) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def sign_up(url: str, username: str, password: str) -> str:
    """Create an account through the API and log in; its session token."""
    body = {"username": username, "password": password}
    api(url, "POST", "/api/auth/signup", body)
    answer = api(url, "POST", "/api/auth/login", body)
    return str(answer["token"]["token"])


@contextmanager
def rabbit_vhost() -> Iterator[str]:
    """A fresh RabbitMQ vhost that guest may use; yields its amqp URL, deletes it after."""
    try:
        socket.create_connection((RABBIT_HOST, RABBIT_PORT), timeout=3).close()
    except OSError as exc:
        pytest.fail(
            f"RabbitMQ is not reachable at {RABBIT_HOST}:{RABBIT_PORT}: {exc}", pytrace=False
        )
    with fresh_vhost("test") as url:
        yield url


class EventFeed:
    """Publishes evolver events to the gateway's events queue on a broker."""

    def __init__(self, broker_url: str) -> None:
        try:
            self._broker: Broker = connect(broker_url, connect_timeout=10.0)
        except BrokerError as exc:
            pytest.fail(f"cannot connect to {broker_url}: {exc}", pytrace=False)
        self._broker.declare(EVENTS_QUEUE)

    def _send(self, msg: Message, message_id: str) -> None:
        self._broker.publish(EVENTS_QUEUE, encode(msg), message_id=message_id)

    def generation(self, training_id: str, generation: int, best: float, mean: float) -> None:
        """Report one finished generation, as the evolver does."""
        self._send(
            GenerationFinished(
                training_id=training_id,
                generation=generation,
                best_fitness=best,
                mean_fitness=mean,
                species=3,
                population=100,
                evaluations_per_s=250.0,
                best_genome_key=generation,
            ),
            f"generation_report:{training_id}:{generation}",
        )

    def report(self, report: GenerationFinished) -> None:
        """Publish a generation report built by the test (species and genome sizes, …)."""
        self._send(report, f"generation_report:{report.training_id}:{report.generation}")

    def finished(
        self, training_id: str, generations: int, best: float, reason: str = "generations"
    ) -> None:
        """Report the end of the run with a small valid champion (4 inputs → 2 outputs)."""
        self._send(
            TrainingFinished(
                training_id=training_id,
                generations=generations,
                best_fitness=best,
                reason=reason,  # type: ignore[arg-type]
                best_genome=CHAMPION,
            ),
            f"training_finished:{training_id}",
        )

    def failed(self, training_id: str, error: str) -> None:
        """Report that the run died."""
        self._send(
            TrainingFailed(training_id=training_id, error=error), f"training_failed:{training_id}"
        )

    def progress(
        self, training_id: str, generation: int, done: int, total: int, evaluators: int = 1
    ) -> None:
        """Report how far the running generation is, as the evolver does (run health)."""
        phase = "local" if generation < 60 else "distributed"  # the spec example's 60
        self._send(
            GenerationProgressed(
                training_id=training_id,
                generation=generation,
                done=done,
                total=total,
                evaluators=evaluators,
                phase=phase,
            ),
            f"progress:{training_id}:{generation}:{done}",
        )

    def champion(self, training_id: str, generation: int, best: float) -> None:
        """A report whose generation improved the best: it carries CHAMPION (run health)."""
        saved = SavedGenome(generation=generation, fitness=best, returns=[best], genome=CHAMPION)
        self._send(
            GenerationFinished(
                training_id=training_id,
                generation=generation,
                best_fitness=best,
                mean_fitness=best / 2,
                species=2,
                population=100,
                evaluations_per_s=39.8,
                best_genome_key=CHAMPION.key,
                species_sizes=[60, 40],
                mean_nodes=2.0,
                mean_connections=4.0,
                best_nodes=2,
                best_connections=4,
                phase="local" if generation < 60 else "distributed",
                champion=saved,
            ),
            f"generation_report:{training_id}:{generation}",
        )

    def waiting(self, training_id: str, reason: str) -> None:
        """Say the training waits (e.g. for an evaluator of its environment)."""
        self._send(
            TrainingWaiting(training_id=training_id, waiting=True, reason=reason),
            f"waiting:{training_id}:{reason}",
        )

    def close(self) -> None:
        """Disconnect."""
        self._broker.stop()


@contextmanager
def gateway_with_feed(workdir: Path, **settings: Any) -> Iterator[tuple[Gateway, EventFeed]]:
    """A gateway on a private RabbitMQ vhost, and a feed of evolver events into it."""
    with rabbit_vhost() as url, running_gateway(workdir, url, **settings) as gw:
        feed = EventFeed(url)
        try:
            yield gw, feed
        finally:
            feed.close()
