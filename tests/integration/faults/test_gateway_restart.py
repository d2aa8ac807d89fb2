"""The gateway killed (SIGKILL) mid-training and started again on the same database.

The evolver and the evaluators do not need the gateway to train; its events wait in the
durable ``ezspark.events`` queue while it is down, and the new gateway process applies them,
so the API ends up with the finished training, every generation and the champion.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ezspark_common.trainer.checkpoints import load_checkpoint
from tests.integration.faults.common import (
    alive,
    evaluator_proc,
    evolver_proc,
    private_vhost,
    record_figures,
    start_gateway,
    training_end,
    wait_served,
)
from tests.integration.services import slow_envs
from tests.integration.services.harness import assert_same_run, config, embedded
from tests.integration.services.procs import processes
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_gateway_killed_mid_training_catches_up_from_the_events_queue(tmp_path: Path) -> None:
    """A gateway SIGKILLed mid-training catches up from the events queue once restarted."""
    cfg = config(gym_game_name=slow_envs.ENV_ID, generations=5, alone_training_iterations=1)
    database = f"sqlite:///{tmp_path / 'gateway.db'}"
    with private_vhost() as url, processes() as procs:
        first = start_gateway(tmp_path, procs, url, database_url=database, name="gateway-1")
        evo = evolver_proc(tmp_path, procs, url)
        ev = evaluator_proc(
            tmp_path, procs, url, "gw-restart", slow_envs.ENV_ID, test_slow_reset_s=0.02
        )
        evo.wait_log("evolver_active")
        ev.wait_log("consuming")
        token = first.signup("gateway-restart")
        with first.client(token) as api:
            wait_served(api, slow_envs.ENV_ID)  # announced: the gateway can check the config
            created = api.post("/api/trainings", json=cfg)
            assert created.status_code == 201, created.text
            tid = created.json()["id"]
            wait_until(
                lambda: api.get(f"/api/trainings/{tid}").json()["generations"] >= 1,
                60,
                "the first generation report",
            )
        first.proc.kill()
        data = tmp_path / "evolver-data"
        wait_until(
            lambda: (data / tid / "final.json").is_file(),
            90,
            "the training to finish while the gateway is down",
        )
        restarted_at = time.monotonic()
        second = start_gateway(tmp_path, procs, url, database_url=database, name="gateway-2")
        with second.client(token) as api:  # the session token is in the database: still valid
            detail = training_end(api, tid, 60)
            caught_up_s = time.monotonic() - restarted_at
            history = api.get(f"/api/trainings/{tid}/generations").json()["items"]
            best = api.get(f"/api/trainings/{tid}/best")
        assert alive(evo)
        assert alive(ev)
        for proc in (second.proc, evo, ev):
            assert proc.stop() == 0
    want = embedded(cfg)
    assert detail["status"] == "finished", detail
    assert [h["generation"] for h in history] == list(range(cfg["generations"]))
    assert want.best is not None
    assert best.json() == want.best.genome.to_wire()
    assert_same_run(load_checkpoint(data / tid), want)
    record_figures("gateway_restart", {"caught_up_after_start_s": round(caught_up_s, 2)})
