"""Poison tasks against REAL evaluator processes: bounded deliveries, counted, no crash loop.

``tests/integration/services/test_evaluator_service.py`` covers bodies that do not decode
(dead-lettered on the first delivery, ``errors_total{kind="poison"}``) with the evaluator on
a thread.  Here: the same through a real process and its /metrics (broker counter
included), a task whose evaluation raises on every delivery (a broken plug-in), and a task
that kills every evaluator that takes it (a native crash).  Every one ends after at most
``delivery_limit + 1`` = 6 deliveries.  Tasks go to their environment's queue
(``tasks(env_id)``), which the evaluators consume because they serve that environment.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path

import pytest

import tests.integration.faults.fault_envs as fault_envs
from ezspark_common.wire.messages import (
    RESULTS_QUEUE,
    EvaluationResult,
    StopRequested,
    dead_letter_queue,
    encode,
)
from tests.integration.faults.common import alive, evaluator_proc, logged, record_figures
from tests.integration.services.harness import (
    CP_TASKS,
    URL,
    bus,
    config,
    honest_result,
    make_task,
    new_prefix,
    tasks,
)
from tests.integration.services.procs import Proc, processes
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

DELIVERY_LIMIT = 5  # RabbitBroker's default: a message is delivered at most 6 times
MAX_DELIVERIES = DELIVERY_LIMIT + 1
TWO_BY_TWO = {"input_size": 2, "output_size": 2, "minimum_reward": -1}


def test_undecodable_tasks_dead_lettered_and_counted_by_a_real_evaluator(tmp_path: Path) -> None:
    """Undecodable tasks are dead-lettered at once, counted in both metrics; process lives."""
    prefix = new_prefix()
    good = make_task(config(), [0, 1], [0], "good")
    with bus(prefix) as b, processes() as procs:
        results = b.collect(RESULTS_QUEUE)
        ev = evaluator_proc(tmp_path, procs, URL, "poison", "CartPole-v1", queue_prefix=prefix)
        ev.wait_log("consuming")
        b.publish(CP_TASKS, b"\x00\xff not json")
        b.publish(CP_TASKS, b'{"kind": "evaluation_task", "schema_version": 1}')
        b.publish(CP_TASKS, encode(StopRequested(training_id="x")))
        b.publish(CP_TASKS, encode(good))
        wait_until(lambda: results, 30, "the good task's result")
        wait_until(lambda: b.depth(dead_letter_queue(CP_TASKS)) == 3, 10, "3 dead letters")
        assert ev.metric("ezspark_evaluator_errors_total", {"kind": "poison"}) == 3
        assert ev.metric("ezspark_broker_poison_messages_total", {"queue": prefix + CP_TASKS}) == 3
        assert len(logged(ev, "poison_task")) == 3
        assert alive(ev)
        assert ev.stop() == 0
    (result,) = results
    assert isinstance(result, EvaluationResult)
    assert result.outcomes == honest_result(good, "x").outcomes


def test_plugin_that_always_raises_is_tried_a_bounded_number_of_times(tmp_path: Path) -> None:
    """A served plug-in whose evaluation always raises is tried 6 times, then gets error
    outcomes; one that cannot even be built is left out of what the evaluator serves."""
    prefix = new_prefix()
    cfg = config(**TWO_BY_TWO)
    broken_queue = tasks("EzFault/BrokenLater-v0")
    broken = make_task(cfg, [0, 1], [0, 1], "broken", env_id="EzFault/BrokenLater-v0")
    good = make_task(config(), [2], [0], "good")
    with bus(prefix) as b, processes() as procs:
        results = b.collect(RESULTS_QUEUE)
        ev = evaluator_proc(
            tmp_path,
            procs,
            URL,
            "broken-plugin",
            "EzFault/BrokenCtor-v0,EzFault/BrokenLater-v0,CartPole-v1",
            queue_prefix=prefix,
            prefetch=1,
        )
        ev.wait_log("consuming")
        (unavailable,) = logged(ev, "envs_unavailable")
        assert unavailable["envs"] == ["EzFault/BrokenCtor-v0"]
        b.publish(broken_queue, encode(broken))
        wait_until(lambda: results, 60, "the broken task's result")
        b.publish(CP_TASKS, encode(good))
        wait_until(lambda: len(results) == 2, 30, "the good task's result")
        failures = logged(ev, "evaluation_failed")
        assert len(failures) == MAX_DELIVERIES
        assert [f["final_attempt"] for f in failures] == [False] * DELIVERY_LIMIT + [True]
        assert ev.metric("ezspark_evaluator_errors_total", {"kind": "evaluation"}) == MAX_DELIVERIES
        assert b.depth(broken_queue) == 0
        assert b.depth(dead_letter_queue(broken_queue)) == 0  # answered, not lost
        assert alive(ev)
        assert ev.stop() == 0
    by_id = {r.task_id: r for r in results if isinstance(r, EvaluationResult)}
    floor = cfg["max_number_of_steps"] * cfg["minimum_reward"]
    for outcome in by_id["broken"].outcomes:
        assert outcome.returns == (floor, floor)
        assert outcome.error is not None
        assert "constructor failed" in outcome.error
    assert by_id["good"].outcomes == honest_result(good, "x").outcomes
    record_figures("poison_plugin_raises", {"deliveries": len(failures)})


def test_task_that_kills_its_evaluator_is_dead_lettered_after_the_delivery_limit(
    tmp_path: Path,
) -> None:
    """Playing tasks in the evaluator's own process (``EZSPARK_ISOLATE_ENVS=false``), a
    task that kills every evaluator taking it is dead-lettered after 6 crashes."""
    prefix = new_prefix()
    crash_queue = tasks("EzFault/Crash-v0")
    crash = make_task(config(**TWO_BY_TWO), [0], [0], "crash", env_id="EzFault/Crash-v0")
    good = make_task(config(), [1, 2], [0], "good")
    crashes: list[int] = []
    with bus(prefix) as b, processes() as procs:
        results = b.collect(RESULTS_QUEUE)
        b.broker.declare(prefix + crash_queue)  # no evaluator has declared it yet
        b.publish(crash_queue, encode(crash))
        started = time.monotonic()
        dead = dead_letter_queue(crash_queue)
        # The test plays the supervisor (systemd, Kubernetes): restart whatever died.
        for n in range(MAX_DELIVERIES + 2):  # bounded: one more than could ever be needed
            ev = evaluator_proc(
                tmp_path,
                procs,
                URL,
                f"crash-{n}",
                "EzFault/Crash-v0,CartPole-v1",
                queue_prefix=prefix,
                prefetch=1,
                isolate_envs="false",
            )

            def settled(proc: Proc = ev) -> bool:
                return not alive(proc) or b.depth(dead) == 1

            wait_until(settled, 60, "the evaluator to crash or the task to be dead-lettered")
            # The crash closes the connection (so RabbitMQ may dead-letter at once) a moment
            # before the process is gone: give a crashing one that moment.
            with contextlib.suppress(subprocess.TimeoutExpired):
                ev.popen.wait(timeout=3)
            if alive(ev):
                break
            assert ev.popen.returncode == fault_envs.CRASH_EXIT_CODE
            crashes.append(n)
        seconds = time.monotonic() - started
        assert len(crashes) == MAX_DELIVERIES
        assert b.depth(dead) == 1
        b.publish(CP_TASKS, encode(good))
        wait_until(lambda: results, 30, "the healthy evaluator's result")
        survivor = procs[-1]
        assert alive(survivor)
        assert survivor.stop() == 0
    (result,) = results
    assert isinstance(result, EvaluationResult)
    assert result.task_id == "good"
    record_figures(
        "poison_crashing_task",
        {
            "crashes_before_dead_letter": len(crashes),
            "seconds_until_dead_lettered_incl_restarts": round(seconds, 1),
        },
    )


def test_native_crashes_cost_only_their_genomes_when_tasks_play_in_a_child(
    tmp_path: Path,
) -> None:
    """By default an evaluator plays tasks in a child process: a segfault (some genomes)
    or an ``os._exit`` (every genome) ends only the child; the genomes that crash it get
    the floor and an error naming the signal and the line, the others their true outcomes,
    and the evaluator answers every task and lives on."""
    prefix = new_prefix()
    segv_cfg = config(
        **TWO_BY_TWO, gym_game_name="EzFault/SegfaultOnOne-v0", initial_population=16, seed=4
    )
    keys = list(range(16))
    segv = make_task(segv_cfg, keys, [0, 1], "segv", env_id="EzFault/SegfaultOnOne-v0")
    crash = make_task(config(**TWO_BY_TWO), [0, 1, 2], [0], "crash", env_id="EzFault/Crash-v0")
    good = make_task(config(), [1, 2], [0], "good")
    with bus(prefix) as b, processes() as procs:
        results = b.collect(RESULTS_QUEUE)
        envs = "EzFault/SegfaultOnOne-v0,EzFault/Crash-v0,CartPole-v1"
        ev = evaluator_proc(tmp_path, procs, URL, "isolated", envs, queue_prefix=prefix)
        ev.wait_log("consuming")
        b.publish(tasks("EzFault/SegfaultOnOne-v0"), encode(segv))
        b.publish(tasks("EzFault/Crash-v0"), encode(crash))
        b.publish(CP_TASKS, encode(good))
        wait_until(lambda: len(results) == 3, 60, "three results")
        crashed_children = ev.metric("ezspark_evaluator_errors_total", {"kind": "env_crashed"})
        assert alive(ev)
        assert ev.stop() == 0
    by_id = {r.task_id: r for r in results if isinstance(r, EvaluationResult)}
    floor = segv_cfg["max_number_of_steps"] * segv_cfg["minimum_reward"]
    segv_out = {o.key: o for o in by_id["segv"].outcomes}
    broken = sorted(k for k, o in segv_out.items() if o.error is not None)
    assert 0 < len(broken) < len(keys)
    for k in broken:
        assert segv_out[k].returns == (floor, floor)
        assert re.fullmatch(
            r"the environment ended its worker process with SIGSEGV "
            r"\(at faults/fault_envs\.py:\d+ in step\)",
            str(segv_out[k].error),
        ), segv_out[k].error
    sound = [k for k in keys if k not in broken]
    alone = make_task(segv_cfg, sound, [0, 1], "alone", env_id="EzFault/SegfaultOnOne-v0")
    assert [segv_out[k] for k in sound] == list(honest_result(alone, "x").outcomes)
    for outcome in by_id["crash"].outcomes:
        assert outcome.error == "the environment ended its worker process (exit code 70)"
    assert by_id["good"].outcomes == honest_result(good, "x").outcomes
    # One child per task that crashed it, then one per genome that crashed it alone.
    assert crashed_children == (1 + len(broken)) + (1 + 3)
