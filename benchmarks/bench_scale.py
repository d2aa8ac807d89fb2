"""Scale-out through the real stack: gateway, evolver, N evaluator processes, RabbitMQ.

The environment waits 1 ms in every ``step`` (``EzSleepyCartPole-v1``: CartPole-v1 plus a
sleep, no CPU), so the evaluators' own latency dominates as for a simulator or a remote
game, and one 2-core machine can host many evaluators honestly.  A user signs up through
the API and posts the training; the figure is the wall time from the POST until the
gateway reports it finished, divided by its generations.  Each evaluator count gets a
fresh stack on a fresh vhost.  The same seed gives the same populations whatever the
evaluator count, so every run does exactly the same work; ``safeness`` is 0 so that it
stays so (re-checks need a second evaluator and are skipped with one).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from benchmarks.bench_broker import stop_processes

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BROKER_URL = os.environ.get("EZSPARK_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
ENV_MODULE = "tests.integration.services.slow_envs"
ENV_ID = "EzSleepyCartPole-v1"
TIMEOUT_S = 900.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], capture_output=True, check=True, timeout=60)


class Stack:
    """Gateway, evolver and ``evaluators`` evaluator processes on a fresh vhost."""

    def __init__(self, evaluators: int, tmp: Path) -> None:
        self.vhost = f"ezspark-bench-{uuid.uuid4().hex[:8]}"
        _rabbitmqctl("add_vhost", self.vhost)
        user = urlsplit(BROKER_URL).username or "guest"
        _rabbitmqctl("set_permissions", "-p", self.vhost, user, ".*", ".*", ".*")
        parts = urlsplit(BROKER_URL)
        url = urlunsplit(parts._replace(path="/" + quote(self.vhost, safe="")))
        self.procs: list[subprocess.Popen[bytes]] = []
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        common = {
            "BROKER_URL": url,
            "METRICS_PORT": "0",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "ENV_MODULES": ENV_MODULE,
            "ANNOUNCE_INTERVAL_S": "2",
        }
        self._start(
            "ezspark-gateway",
            tmp,
            common,
            HOST="127.0.0.1",
            PORT=str(port),
            DATABASE_URL=f"sqlite:///{tmp / 'gateway.db'}",
        )
        self._start(
            "ezspark-evolver", tmp, common, DATA_DIR=str(tmp / "evolver"), ANNOUNCE_GRACE_S="30"
        )
        for _ in range(evaluators):
            self._start("ezspark-evaluator", tmp, common, ENVS=ENV_ID)
        self._wait_ready(evaluators)

    def _start(self, command: str, tmp: Path, common: dict[str, str], **values: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EZSPARK_")}
        env["PYTHONPATH"] = str(REPO)
        env.update({f"EZSPARK_{k}": v for k, v in {**common, **values}.items()})
        log = open(tmp / f"{command}-{len(self.procs)}.log", "wb")  # noqa: SIM115 - lives with the process
        self.procs.append(
            subprocess.Popen([str(BIN / command)], env=env, stdout=log, stderr=subprocess.STDOUT)
        )

    def _wait_ready(self, evaluators: int) -> None:
        deadline = time.monotonic() + 60
        self.api = httpx.Client(base_url=self.base, timeout=30)
        while True:
            try:
                if self.api.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("gateway not ready")
            time.sleep(0.2)
        # A fresh random password: the gateway refuses weak or name-like ones.
        body = {"username": "bench", "password": secrets.token_urlsafe(18)}
        self.api.post("/api/auth/signup", json=body).raise_for_status()
        signup = self.api.post("/api/auth/login", json=body)
        signup.raise_for_status()
        self.api.headers["Authorization"] = f"Bearer {signup.json()['token']['token']}"
        # Announcements every 2 s: after this, the gateway and the evolver know them all.
        while self._live() < evaluators:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self._live()} of {evaluators} evaluators announced")
            time.sleep(0.5)
        time.sleep(2.5)

    def _live(self) -> int:
        response = self.api.get("/api/environments")
        if response.status_code != 200:
            return 0
        for env in response.json().get("items", []):
            if env.get("env_id") == ENV_ID:
                return int(env.get("evaluators", 0))
        return 0

    def train(self, config: dict[str, Any]) -> float:
        """Post ``config``; seconds from the POST until the gateway says it finished."""
        started = time.perf_counter()
        created = self.api.post("/api/trainings", json=config)
        created.raise_for_status()
        tid = created.json()["id"]
        while True:
            detail = self.api.get(f"/api/trainings/{tid}").json()
            if detail["status"] in ("finished", "failed", "stopped"):
                break
            if time.perf_counter() - started > TIMEOUT_S:
                raise TimeoutError("training did not finish")
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        if detail["status"] != "finished":
            raise RuntimeError(f"training ended {detail['status']}: {detail.get('error')}")
        return seconds

    def close(self) -> None:
        """Stop every process and delete the vhost."""
        self.api.close()
        stop_processes(self.procs)
        _rabbitmqctl("delete_vhost", self.vhost)


def _config(population: int, generations: int) -> dict[str, Any]:
    base = json.loads((REPO / "examples" / "cartpole.json").read_text())
    return {
        **base,
        "gym_game_name": ENV_ID,
        "initial_population": population,
        "max_population": population,
        "max_number_of_games": 5,
        "sub_games": 1,
        "generations": generations,
        "alone_training_iterations": 0,
        "safeness": 0.0,
        "max_number_of_steps": 200,
        "fitness_threshold": None,
        "seed": 1,
    }


def seconds_per_generation(evaluators: int, population: int, generations: int) -> float:
    """Wall time per generation of one training through a fresh stack."""
    with tempfile.TemporaryDirectory() as tmp:
        keep = os.environ.get("BENCH_KEEP_DIR")  # to read the services' logs afterwards
        if keep:
            tmp = keep
            Path(tmp).mkdir(parents=True, exist_ok=True)
        stack = Stack(evaluators, Path(tmp))
        try:
            return stack.train(_config(population, generations)) / generations
        finally:
            stack.close()


CASES = ((100, 8, 6.5, 3), (500, 16, 12.0, 1))  # population, evaluators, goal, generations


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Both scale-out cases: 1 evaluator, then N, on the same training."""
    out = []
    for population, n, goal, generations in CASES:
        gens = 1 if quick else generations
        one = seconds_per_generation(1, population, gens)
        many = seconds_per_generation(n, population, gens)
        out.append(
            {
                "population": population,
                "evaluators": n,
                "generations": gens,
                "one_seconds_per_generation": one,
                "n_seconds_per_generation": many,
                "speedup": one / many,
                "goal": goal,
            }
        )
    return out


def rows(results: list[dict[str, Any]]) -> list[str]:
    """Table rows for run.py."""
    return [
        f"| scale-out through gateway+evolver+RabbitMQ, 1 ms/step env, population "
        f"{r['population']}, {r['evaluators']} evaluators vs 1 | "
        f"{r['n_seconds_per_generation']:.2f} s/gen | "
        f"{r['one_seconds_per_generation']:.2f} s/gen (1 evaluator) | {r['speedup']:.2f}× | "
        f"≥ {r['goal']}× (ideal {r['evaluators']}×) | "
        f"{'met' if r['speedup'] >= r['goal'] else 'NOT met'} |"
        for r in results
    ]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evaluators", type=int, default=None)
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--generations", type=int, default=2)
    args = parser.parse_args()
    if args.evaluators:
        print(seconds_per_generation(args.evaluators, args.population, args.generations))
    else:
        print("\n".join(rows(run())))
