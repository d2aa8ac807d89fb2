"""Faults with real service processes: evolver killed, evaluator killed, lying evaluator.

Each run must still end with exactly the embedded trainer's final population.  Evaluators
serve only the environments a test names (``EZSPARK_ENVS``) and announce themselves every
second; evolver processes load no environment plug-in (they never build an environment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.services import slow_envs
from tests.integration.services.harness import (
    assert_same_run,
    bus,
    config,
    embedded,
    evolver_thread,
    finished,
    generations_done,
    new_prefix,
)
from tests.integration.services.procs import (
    Proc,
    evaluator_process,
    evolver_process,
    processes,
)
from tests.support.waiting import wait_until


def evaluator(tmp_path: Path, name: str, prefix: str, envs: str, **settings: Any) -> Proc:
    """An evaluator process serving ``envs``."""
    return evaluator_process(tmp_path, name, prefix, envs, **settings)


def evolver(tmp_path: Path, prefix: str, data_dir: Path, log_name: str) -> Proc:
    """An evolver process keeping its data in ``data_dir`` (no environment plug-in)."""
    return evolver_process(tmp_path, prefix, data_dir, log_name, task_batch_size=4)


def test_evolver_killed_mid_training_resumes_and_matches_undisturbed_run(tmp_path: Path) -> None:
    """SIGKILL the evolver after two generations; a new evolver process takes the leader
    lock the dead one held, resumes the training from its checkpoint (not from scratch) and
    ends with the embedded run's population."""
    prefix, tid, data = new_prefix(), "resume-me", tmp_path / "data"
    cfg = config(gym_game_name=slow_envs.ENV_ID, generations=5, alone_training_iterations=0)
    with bus(prefix) as b, processes() as procs:
        procs.append(evaluator(tmp_path, "ev", prefix, slow_envs.ENV_ID, test_slow_reset_s=0.01))
        first = evolver(tmp_path, prefix, data, "evolver-1.log")
        procs.append(first)
        first.wait_log("evolver_active")
        b.request(tid, cfg)
        wait_until(lambda: generations_done(data, tid) >= 2, 60, "two generations")
        first.kill()
        assert generations_done(data, tid) < cfg["generations"], "finished before the kill"
        second = evolver(tmp_path, prefix, data, "evolver-2.log")
        procs.append(second)
        second.wait_log("evolver_active")
        resumed = second.wait_log("training_running", training_id=tid)
        assert resumed["generation"] >= 2
        state = finished(data, tid)
        wait_until(lambda: b.events_of(tid, "training_finished"), 10, "TrainingFinished")
        assert second.stop() == 0
    assert_same_run(state, embedded(cfg))
    assert sorted({r.generation for r in b.events_of(tid, "generation_report")}) == list(
        range(cfg["generations"])
    )


def test_evaluator_killed_mid_task_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL an evaluator while it holds a task: RabbitMQ redelivers the task to another
    evaluator (the evolver's long timeout never fires; with safeness 0 nothing is declined
    either, so nothing is re-dispatched) and the run is unchanged."""
    prefix, tid = new_prefix(), "kill-evaluator"
    cfg = config(gym_game_name=slow_envs.ENV_ID, alone_training_iterations=1, safeness=0.0)
    with (
        bus(prefix) as b,
        processes() as procs,
        evolver_thread(prefix, tmp_path, task_timeout_s=300.0) as evo,
    ):
        victim = evaluator(
            tmp_path, "victim", prefix, slow_envs.ENV_ID, test_slow_reset_s=0.3, prefetch=1
        )
        procs.append(victim)
        victim.wait_log("consuming")
        b.request(tid, cfg)
        wait_until(
            lambda: victim.metric("ezspark_evaluator_tasks_in_flight") >= 1,
            60,
            "the victim to hold a task",
        )
        victim.kill()
        survivor = evaluator(tmp_path, "survivor", prefix, slow_envs.ENV_ID, test_slow_reset_s=0.01)
        procs.append(survivor)
        state = finished(tmp_path, tid)
        assert evo.metric("ezspark_evolver_tasks_redispatched_total") == 0
        assert survivor.stop() == 0
    assert_same_run(state, embedded(cfg))


def test_lying_evaluator_is_caught_by_safeness_and_quarantined(tmp_path: Path) -> None:
    """With safeness 1 and three evaluators, one adding an offset to every return is caught:
    mismatches are counted, a third evaluator's tie-break sides with the honest answer, the
    liar (and only it) is quarantined, and the run equals the embedded one."""
    prefix, tid = new_prefix(), "liar"
    cfg = config(safeness=1.0, generations=4, alone_training_iterations=1)
    with bus(prefix) as b, processes() as procs, evolver_thread(prefix, tmp_path) as evo:
        liar = evaluator(tmp_path, "liar", prefix, "CartPole-v1", fault_fitness_offset=1.5)
        honest = [
            evaluator(tmp_path, name, prefix, "CartPole-v1") for name in ("honest-a", "honest-b")
        ]
        procs.extend([liar, *honest])
        # All three announced: every re-check and tie-break has an evaluator to go to.
        wait_until(
            lambda: evo.service.ctx.registry.slots("CartPole-v1") == 3,
            30,
            "three evaluators announced",
        )
        b.request(tid, cfg)
        state = finished(tmp_path, tid)
        wait_until(lambda: len(b.events_of(tid, "generation_report")) == 4, 30, "4 reports")
        reports = sorted(b.events_of(tid, "generation_report"), key=lambda e: e.generation)
        assert evo.metric("ezspark_evolver_safeness_mismatches_total") > 0
        assert evo.metric("ezspark_evolver_safeness_skipped_total") == 0
        assert evo.metric("ezspark_evolver_quarantined_evaluators_total") == 1
        for proc in procs:
            assert proc.stop() == 0
    assert json.loads((tmp_path / tid / "quarantine.json").read_text()) == ["liar"]
    want = embedded(cfg)
    assert_same_run(state, want)
    assert sum(r.safeness_mismatches for r in state.history) > 0
    # The owner is told too: each report carries its generation's re-check counts, in
    # genomes as the embedded trainer counts them (safeness 1: the whole population).
    told = [(r.safeness_checks, r.safeness_mismatches) for r in reports]
    assert told == [(h.safeness_checks, h.safeness_mismatches) for h in state.history]
    assert [r.safeness_checks for r in reports] == [h.safeness_checks for h in want.history]
    assert [r.safeness_checks for r in reports] == [r.population for r in reports]
