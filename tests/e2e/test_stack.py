"""The whole stack as real processes: gateway, evolver and two evaluators on RabbitMQ.

The stack gets its own RabbitMQ vhost (the gateway's queue names are fixed), created with
``rabbitmqctl`` and deleted afterwards, plus free ports and temporary directories.  The
evaluators serve only the example's environment (``EZSPARK_ENVS``) and announce themselves
every second; the evolver re-checks on one what the other answered.  A user
signs up through the API, posts the spec's example config (bounded to a few generations),
watches the training finish, downloads the champion, and the evolver's final population
is compared with the embedded trainer's for the same config.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ezspark_common.trainer.checkpoints import load_checkpoint
from tests.integration.services.harness import (
    assert_same_run,
    embedded,
    require_rabbitmq,
)
from tests.integration.services.procs import (
    Proc,
    free_port,
    fresh_vhost,
    processes,
    service_env,
)
from tests.support.configs import example
from tests.support.waiting import wait_until

# The spec's example runs 600000 generations of 100 genomes × 5 games of 200 steps; these
# overrides bound it (and start distributing after one generation) while every other key
# keeps the spec's value.
BOUNDS = {
    "generations": 3,
    "initial_population": 16,
    "max_number_of_steps": 50,
    "alone_training_iterations": 1,
}


@pytest.fixture
def vhost_broker_url() -> Iterator[str]:
    """A broker URL on a fresh vhost (deleted afterwards)."""
    require_rabbitmq()
    with fresh_vhost("e2e") as url:
        yield url


def spec_config() -> dict[str, Any]:
    """The spec's example config, read raw from the repo, with BOUNDS applied."""
    return example("spec-example", **BOUNDS)


def start_stack(tmp: Path, url: str, procs: list[Proc], env_id: str) -> str:
    """Gateway, evolver and two evaluators of ``env_id``; the gateway's base URL once it is
    ready."""
    port = free_port()
    procs.append(
        Proc(
            "ezspark-gateway",
            tmp / "gateway.log",
            service_env(
                broker_url=url,
                host="127.0.0.1",
                port=port,
                metrics_port=0,
                database_url=f"sqlite:///{tmp / 'gateway.db'}",
            ),
        )
    )
    procs.append(
        Proc(
            "ezspark-evolver",
            tmp / "evolver.log",
            service_env(
                broker_url=url,
                data_dir=tmp / "evolver",
                metrics_port=free_port(),
                task_batch_size=8,
                task_timeout_s=30,
            ),
        )
    )
    for name in ("e2e-a", "e2e-b"):
        procs.append(
            Proc(
                "ezspark-evaluator",
                tmp / f"{name}.log",
                service_env(
                    broker_url=url,
                    evaluator_id=name,
                    metrics_port=free_port(),
                    envs=env_id,
                    announce_interval_s=1.0,
                ),
            )
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 30, "the gateway to be ready")
    for proc in procs[1:]:
        proc.wait_log("consuming")
    return base


def test_stack_trains_spec_example_like_the_embedded_trainer(
    tmp_path: Path, vhost_broker_url: str
) -> None:
    """Sign up, see the environment listed with both evaluators, post the spec example, watch
    it finish through the API, download the best genome; the evolver's final population
    equals the embedded trainer's, and every service exits 0 on SIGTERM."""
    cfg = spec_config()
    with processes() as procs:
        base = start_stack(tmp_path, vhost_broker_url, procs, cfg["gym_game_name"])
        with httpx.Client(base_url=base, timeout=10) as api:
            body = {"username": "ada", "password": "correct horse battery"}
            assert api.post("/api/auth/signup", json=body).status_code == 202
            signup = api.post("/api/auth/login", json=body)
            assert signup.status_code == 200, signup.text
            api.headers["Authorization"] = f"Bearer {signup.json()['token']['token']}"
            wait_until(
                lambda: any(
                    e["env_id"] == cfg["gym_game_name"] and e["evaluators"] == 2
                    for e in api.get("/api/environments").json()["items"]
                ),
                30,
                "the gateway to hear both evaluators announce the environment",
            )
            created = api.post("/api/trainings", json=cfg)
            assert created.status_code == 201, created.text
            tid = created.json()["id"]
            detail = wait_until(
                lambda: (
                    (d := api.get(f"/api/trainings/{tid}").json())["status"]
                    in ("finished", "failed", "stopped")
                    and d
                ),
                120,
                "the training to end",
            )
            assert detail["status"] == "finished", detail
            assert detail["finish_reason"] == "generations"
            assert detail["generations"] == cfg["generations"]
            history = api.get(f"/api/trainings/{tid}/generations").json()["items"]
            assert [h["generation"] for h in history] == list(range(cfg["generations"]))
            best = api.get(f"/api/trainings/{tid}/best")
            assert best.status_code == 200
        evolver, evaluators = procs[1], procs[2:]
        assert evolver.metric("ezspark_evolver_safeness_checks_total") > 0
        assert evolver.metric("ezspark_evolver_safeness_mismatches_total") == 0
        for proc in evaluators:  # both took part
            assert proc.metric("ezspark_evaluator_genomes_total") > 0
        for proc in procs:
            assert proc.stop() == 0, f"{proc.command} did not exit cleanly"
    want = embedded(cfg)
    assert_same_run(load_checkpoint(tmp_path / "evolver" / tid), want)
    assert want.best is not None
    assert best.json() == want.best.genome.to_wire()
    assert detail["best_fitness"] == want.best.fitness
