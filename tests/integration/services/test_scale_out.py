"""Scale-out promises against the real RabbitMQ: fair sharing between users, routing by
environment to heterogeneous evaluators, and a hot-standby evolver taking over.

Every finished run is compared with the embedded trainer's run of the same config.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import tests.integration.services.slow_envs as slow_envs
from tests.integration.services.harness import (
    assert_same_run,
    bus,
    config,
    embedded,
    evolver_thread,
    finished,
    generations_done,
    new_prefix,
    tasks,
)
from tests.integration.services.procs import evaluator_process, evolver_process, processes
from tests.support.waiting import wait_until


@pytest.mark.serial  # compares two timings: other tests would load one of them
def test_small_training_of_another_user_is_not_starved_by_four_long_ones(tmp_path: Path) -> None:
    """User A runs 4 long trainings on the evaluators; user B's 3-generation training then
    finishes within 2× its time alone, and equal to the embedded run."""
    sleepy = slow_envs.SLEEPY_ID
    small = config(
        gym_game_name=sleepy,
        initial_population=24,
        generations=3,
        max_number_of_steps=40,
        alone_training_iterations=0,
        safeness=0.0,
    )
    big = config(
        gym_game_name=sleepy,
        initial_population=60,
        generations=10_000,
        max_number_of_steps=40,
        alone_training_iterations=0,
        safeness=0.0,
    )
    prefix, data = new_prefix(), tmp_path / "data"
    tasks(sleepy)
    # Evaluators as processes: in one process they would share one evaluation lock.
    with (
        bus(prefix) as b,
        processes() as procs,
        evolver_thread(prefix, data, task_batch_size=500) as evo,
    ):
        procs.extend(evaluator_process(tmp_path, f"ev{i}", prefix, sleepy) for i in range(4))
        # Four interpreters importing numpy and gymnasium at once on 2 cores take a while:
        # wait for each to start before asking that all four are live together.
        for proc in procs:
            proc.wait_log("evaluator_started", timeout=90)
        registry = evo.service.ctx.registry
        wait_until(lambda: registry.slots(sleepy) >= 4, 30, "4 evaluators announced")
        started = time.monotonic()
        b.request("b-alone", small, owner="bob")
        alone_state = finished(data, "b-alone")
        alone = time.monotonic() - started
        for i in range(4):
            b.request(f"a-{i}", {**big, "seed": i}, owner="alice")
        wait_until(
            lambda: all(generations_done(data, f"a-{i}") >= 1 for i in range(4)),
            120,
            "alice's trainings under way",
        )
        started = time.monotonic()
        b.request("b-shared", small, owner="bob")
        shared_state = finished(data, "b-shared")
        shared = time.monotonic() - started
        assert len(evo.service.active()) == 4  # alice's four went on all along
    print(f"bob's training: alone {alone:.2f} s, beside alice's four {shared:.2f} s")
    assert shared <= 2 * alone, f"shared {shared:.2f}s vs alone {alone:.2f}s"
    assert_same_run(alone_state, embedded(small))
    assert_same_run(shared_state, embedded(small))


def test_training_on_a_custom_env_reaches_only_the_evaluator_that_has_it(tmp_path: Path) -> None:
    """Two evaluators, only one with the custom environment's module; an evolver without
    it.  The training gets no error outcome, the other evaluator never gets a task of it,
    and the final population equals the embedded trainer's."""
    prefix, data, tid = new_prefix(), tmp_path / "data", "custom"
    cfg = config(gym_game_name=slow_envs.ENV_ID, generations=3, safeness=0.5)
    for env_id in (slow_envs.ENV_ID, "CartPole-v1"):
        tasks(env_id)
    with bus(prefix) as b, processes() as procs:
        has = evaluator_process(tmp_path, "has-env", prefix, f"{slow_envs.ENV_ID},CartPole-v1")
        lacks = evaluator_process(tmp_path, "lacks-env", prefix, "CartPole-v1", env_modules="")
        evolver = evolver_process(tmp_path, prefix, data, "evolver.log", announce_grace_s=5)
        procs.extend([has, lacks, evolver])
        evolver.wait_log("evolver_active")
        b.request(tid, cfg)
        state = finished(data, tid)
        assert has.metric("ezspark_evaluator_genomes_total") > 0
        assert lacks.metric("ezspark_evaluator_genomes_total") == 0
        assert lacks.metric("ezspark_evaluator_tasks_declined_total") == 0
        for proc in (has, lacks):
            assert proc.metric("ezspark_evaluator_errors_total", {"kind": "genome_error"}) == 0
        # One evaluator serves the environment: re-checks are skipped, never mis-routed.
        assert evolver.metric("ezspark_evolver_safeness_skipped_total") > 0
    assert all(o.error is None for o in state.last_outcomes.values())
    assert_same_run(state, embedded(cfg))


def test_standby_evolver_takes_over_after_kill_9_with_identical_result(tmp_path: Path) -> None:
    """Two evolvers share a data directory: one is active, one waits.  SIGKILL the
    active one mid-training; the standby takes over within seconds, resumes from the
    checkpoint and ends with the embedded run's final population."""
    prefix, data, tid = new_prefix(), tmp_path / "data", "failover"
    cfg = config(gym_game_name=slow_envs.ENV_ID, generations=6, alone_training_iterations=0)
    tasks(slow_envs.ENV_ID)
    with bus(prefix) as b, processes() as procs:
        procs.append(
            evaluator_process(tmp_path, "ev", prefix, slow_envs.ENV_ID, test_slow_reset_s=0.01)
        )
        first = evolver_process(tmp_path, prefix, data, "evolver-1.log")
        procs.append(first)
        first.wait_log("evolver_active")
        second = evolver_process(tmp_path, prefix, data, "evolver-2.log")
        procs.append(second)
        second.wait_log("evolver_standby")
        b.request(tid, cfg)
        wait_until(lambda: generations_done(data, tid) >= 2, 60, "two generations")
        first.kill()
        killed = time.monotonic()
        assert generations_done(data, tid) < cfg["generations"], "finished before the kill"
        second.wait_log("evolver_active", timeout=10)
        took_over = time.monotonic() - killed
        resumed = second.wait_log("training_running", training_id=tid)
        assert resumed["generation"] >= 2
        state = finished(data, tid)
        wait_until(lambda: b.events_of(tid, "training_finished"), 10, "TrainingFinished")
        assert second.stop() == 0
    print(f"standby took over {took_over:.2f} s after the kill")
    assert took_over < 5.0
    assert_same_run(state, embedded(cfg))
