"""RabbitMQ stopped and started (``rabbitmqctl stop_app`` / ``start_app``) mid-training.

The whole stack runs as real processes on a private vhost: gateway, evolver and two
evaluators.  Nobody restarts them: each must notice the outage, keep its state, reconnect
by itself and carry on, so the training finishes with exactly the embedded run's final
population, the gateway has every generation, and a training submitted after the restart
runs too.  The broker is always restored (``finally``) and the test waits for
``rabbitmq-diagnostics -q ping`` before going on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ezspark_common.trainer.checkpoints import load_checkpoint
from tests.integration.faults.common import (
    BROKER_CONNECTED,
    BROKER_LOST,
    BROKER_RETRY,
    alive,
    evaluator_proc,
    evolver_proc,
    log_time,
    logged,
    private_vhost,
    rabbitmq_stopped,
    record_figures,
    start_gateway,
    training_end,
    wait_served,
)
from tests.integration.services import slow_envs
from tests.integration.services.harness import assert_same_run, config, embedded
from tests.integration.services.procs import Proc, processes
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.serial]

RECONNECTS = "ezspark_broker_reconnects_total"
RETRIES_WHILE_DOWN = 3  # each service must have failed this many reconnects: a real outage


def test_rabbitmq_restart_mid_training_every_service_reconnects_and_run_is_unchanged(
    tmp_path: Path,
) -> None:
    """After stop_app/start_app mid-training all 4 services reconnect alone; run unchanged."""
    # ~0.2 s per task on the evaluators: the training lasts long enough to be caught mid-way.
    first_cfg = config(gym_game_name=slow_envs.ENV_ID, generations=6, alone_training_iterations=1)
    after_cfg = config(generations=3, alone_training_iterations=1, seed=11)
    with private_vhost() as url, processes() as procs:
        gw = start_gateway(tmp_path, procs, url)
        evo = evolver_proc(tmp_path, procs, url, task_timeout_s=20)
        envs = f"{slow_envs.ENV_ID},CartPole-v1"  # the first training's, the second one's
        evs = [
            evaluator_proc(tmp_path, procs, url, name, envs, test_slow_reset_s=0.05)
            for name in ("restart-a", "restart-b")
        ]
        evo.wait_log("evolver_active")
        for ev in evs:
            ev.wait_log("consuming")
        services = {"gateway": gw.proc, "evolver": evo, **{ev.log_path.stem: ev for ev in evs}}
        token = gw.signup("rabbit-restart")
        with gw.client(token) as api:
            # The gateway cannot build the slow plug-in: it learns its sizes from the
            # evaluators' announcements.
            wait_served(api, slow_envs.ENV_ID, evaluators=2)
            created = api.post("/api/trainings", json=first_cfg)
            assert created.status_code == 201, created.text
            first = created.json()["id"]
            started = time.monotonic()
            wait_until(
                lambda: api.get(f"/api/trainings/{first}").json()["generations"] >= 2,
                60,
                "two generations before the outage",
            )
            with rabbitmq_stopped() as broker:
                wait_until(
                    lambda: all(
                        len(logged(p, BROKER_RETRY)) >= RETRIES_WHILE_DOWN
                        for p in services.values()
                    ),
                    60,
                    f"every service to fail {RETRIES_WHILE_DOWN} reconnects",
                )
                assert all(logged(p, BROKER_LOST) for p in services.values())
                assert not gw.ready(), "/readyz must say the broker is down"
                during = api.get(f"/api/trainings/{first}")  # reads need no broker
                assert during.status_code == 200
                generations_during = during.json()["generations"]
                assert generations_during < first_cfg["generations"], "finished too early"
            reconnected = wait_until(
                lambda: reconnect_delays(services, broker["up"]), 60, "every service to reconnect"
            )
            wait_until(gw.ready, 30, "the gateway to be ready again")
            ready_s = time.time() - broker["up"]
            resumed_s = wait_until(
                lambda: (
                    (api.get(f"/api/trainings/{first}").json()["generations"] > generations_during)
                    and time.time() - broker["up"]
                ),
                120,
                "a new generation after the restart",
            )
            created = api.post("/api/trainings", json=after_cfg)
            assert created.status_code == 201, created.text
            after = created.json()["id"]
            first_detail = training_end(api, first, 180)
            total_s = time.monotonic() - started
            after_detail = training_end(api, after, 120)
            histories = {
                tid: [
                    h["generation"]
                    for h in api.get(f"/api/trainings/{tid}/generations").json()["items"]
                ]
                for tid in (first, after)
            }
        assert all(alive(p) for p in procs), "a service exited instead of reconnecting"
        for proc in (evo, *evs):
            assert proc.metric(RECONNECTS) >= 1
        assert gw.metric(RECONNECTS) >= 1
        ignored = {
            reason: evo.metric("ezspark_evolver_results_ignored_total", {"reason": reason})
            for reason in ("duplicate", "stale")
        }
        redispatched = evo.metric("ezspark_evolver_tasks_redispatched_total")
        overdue = len(logged(evo, "task_overdue"))
        for proc in procs:
            assert proc.stop() == 0, f"{proc.command} did not exit cleanly"
    data = tmp_path / "evolver-data"
    for detail, cfg in ((first_detail, first_cfg), (after_detail, after_cfg)):
        assert detail["status"] == "finished", detail
        assert histories[detail["id"]] == list(range(cfg["generations"]))
        want = embedded(cfg)
        assert_same_run(load_checkpoint(data / detail["id"]), want)
        assert want.best is not None
        assert detail["best_fitness"] == want.best.fitness
    record_figures(
        "broker_restart",
        {
            "outage_s": round(broker["up"] - broker["down"], 1),
            "reconnect_after_start_app_s": reconnected,
            "gateway_ready_after_start_app_s": round(ready_s, 1),
            "first_new_generation_after_start_app_s": round(float(resumed_s), 1),
            "training_total_s": round(total_s, 1),
            "tasks_overdue": overdue,
            "tasks_redispatched_incl_declined": redispatched,
            "results_ignored": ignored,
        },
    )


def reconnect_delays(services: dict[str, Proc], up: float) -> dict[str, float] | None:
    """Seconds from start_app returning to each service's "connected to RabbitMQ" log line
    after the outage, or None while one of them has not reconnected yet."""
    delays = {}
    for name, proc in services.items():
        lost = logged(proc, BROKER_LOST)
        again = [r for r in logged(proc, BROKER_CONNECTED) if log_time(r) > log_time(lost[0])]
        if not again:
            return None
        delays[name] = round(log_time(again[0]) - up, 2)
    return delays
