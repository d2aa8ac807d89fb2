"""Broken environments through REAL evaluator processes (plug-in loaded by EZSPARK_ENV_MODULES).

An environment that raises in ``step``, returns NaN or never terminates costs its genome
the reward floor (and an error message), is counted in the evaluator's metrics, and the
evaluator lives on; a whole training on such an environment still equals the embedded run
(the evolver process loads no plug-in: it never builds the environment).  Each task goes to
its environment's queue, served by evaluators that name it in ``EZSPARK_ENVS``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tests.integration.faults.fault_envs  # noqa: F401 - registers EzFault/* here too
from ezspark_common.cli.supervise import HUNG_EXIT_CODE
from ezspark_common.trainer.checkpoints import load_checkpoint
from ezspark_common.wire.messages import (
    RESULTS_QUEUE,
    EvaluationResult,
    dead_letter_queue,
    encode,
)
from tests.integration.faults.common import alive, evaluator_proc, evolver_proc, logged
from tests.integration.services.harness import (
    CP_TASKS,
    URL,
    assert_same_run,
    bus,
    config,
    embedded,
    honest_result,
    make_task,
    new_prefix,
    tasks,
)
from tests.integration.services.procs import processes
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TWO_BY_TWO = {"input_size": 2, "output_size": 2, "minimum_reward": -1}  # EzFault/* sizes


def test_raising_nan_and_endless_envs_get_floor_fitness_counted_and_evaluator_lives(
    tmp_path: Path,
) -> None:
    """Raise/NaN envs give floor fitness + error (counted); endless ones stop at max_steps."""
    prefix = new_prefix()
    cfg = config(**TWO_BY_TWO)
    floor = cfg["max_number_of_steps"] * cfg["minimum_reward"]
    raising = make_task(cfg, [0, 1, 2], [0, 1], "raise", env_id="EzFault/Raise-v0")
    nan = make_task(cfg, [3, 4], [0, 1], "nan", env_id="EzFault/NaN-v0")
    endless = make_task(cfg, [5], [0, 1], "endless", env_id="EzFault/Endless-v0")
    after = make_task(config(), [0, 1], [0], "after")  # plain CartPole afterwards
    with bus(prefix) as b, processes() as procs:
        results = b.collect(RESULTS_QUEUE)
        ev = evaluator_proc(
            tmp_path,
            procs,
            URL,
            "bad-envs",
            "EzFault/Raise-v0,EzFault/NaN-v0,EzFault/Endless-v0,CartPole-v1",
            queue_prefix=prefix,
            prefetch=1,
        )
        ev.wait_log("consuming")
        for task in (raising, nan, endless, after):
            b.publish(tasks(task.env_id), encode(task))
        wait_until(lambda: len(results) == 4, 60, "four results")
        assert alive(ev)
        assert ev.metric("ezspark_evaluator_errors_total", {"kind": "genome_error"}) == 5
        assert ev.metric("ezspark_evaluator_genomes_total") == 8
        assert ev.metric("ezspark_evaluator_errors_total", {"kind": "evaluation"}) == 0
        assert ev.stop() == 0
    by_id = {r.task_id: r for r in results if isinstance(r, EvaluationResult)}
    for task in (raising, nan, endless, after):  # exactly what the embedded path computes
        assert by_id[task.task_id].outcomes == honest_result(task, "x").outcomes
    for outcome in by_id["raise"].outcomes:
        assert outcome.returns == (floor, floor)
        assert outcome.error is not None
        assert "step raised RuntimeError: boom" in outcome.error
    for outcome in by_id["nan"].outcomes:
        assert outcome.returns == (floor, floor)
        assert outcome.error is not None
    (forever,) = by_id["endless"].outcomes
    assert forever.error is None
    assert forever.steps == 2 * cfg["max_number_of_steps"]  # both games cut at max_steps
    assert all(o.error is None for o in by_id["after"].outcomes)


def test_training_on_env_that_raises_for_some_genomes_equals_embedded_run(tmp_path: Path) -> None:
    """A training on an env raising for some genomes equals the embedded run; errors are
    counted, and each report tells the owner how many and why, as the embedded run does."""
    prefix, tid = new_prefix(), "raise-on-one"
    cfg = config(
        gym_game_name="EzFault/RaiseOnOne-v0",
        generations=4,
        alone_training_iterations=1,
        **TWO_BY_TWO,
    )
    with bus(prefix) as b, processes() as procs:
        evo = evolver_proc(tmp_path, procs, URL, queue_prefix=prefix)
        evs = [
            evaluator_proc(tmp_path, procs, URL, name, "EzFault/RaiseOnOne-v0", queue_prefix=prefix)
            for name in ("raise-a", "raise-b")
        ]
        evo.wait_log("evolver_active")
        for ev in evs:
            ev.wait_log("consuming")
        b.request(tid, cfg)
        data = tmp_path / "evolver-data"
        wait_until(lambda: (data / tid / "final.json").is_file(), 90, "the training to finish")
        errors = sum(
            ev.metric("ezspark_evaluator_errors_total", {"kind": "genome_error"}) for ev in evs
        )
        assert errors > 0
        assert all(alive(p) for p in procs)
        for proc in procs:
            assert proc.stop() == 0
        reports = sorted(b.events_of(tid, "generation_report"), key=lambda e: e.generation)
    state = load_checkpoint(data / tid)
    want = embedded(cfg)
    assert_same_run(state, want)
    told = [(r.generation, r.errors, r.first_error) for r in reports]
    assert told == [(h.generation, h.errors, h.first_error) for h in want.history]
    assert any(n for _, n, _ in told)
    forbidden = r"step raised ValueError: action 1 is forbidden \(at support/faulty_envs\.py:\d+"
    assert all(re.match(forbidden, e or "") for _, n, e in told if n)


def test_hung_env_settles_its_task_as_failed_and_the_evaluator_exits_for_a_restart(
    tmp_path: Path,
) -> None:
    """Playing tasks in its own process (``EZSPARK_ISOLATE_ENVS=false``): after task_hang_s
    a hung task gets floor outcomes (acked, not dead-lettered), then the process exits 75."""
    prefix = new_prefix()
    cfg = config(**TWO_BY_TWO)
    floor = cfg["max_number_of_steps"] * cfg["minimum_reward"]
    hang_queue = tasks("EzFault/Hang-v0")
    hang = make_task(cfg, [0, 1], [0, 1], "hang", env_id="EzFault/Hang-v0")
    good = make_task(config(), [1, 2], [0], "good")
    envs = "EzFault/Hang-v0,CartPole-v1"
    with bus(prefix) as b, processes() as procs:
        results = b.collect(RESULTS_QUEUE)
        ev = evaluator_proc(
            tmp_path,
            procs,
            URL,
            "hang",
            envs,
            queue_prefix=prefix,
            prefetch=1,
            task_hang_s=2,
            isolate_envs="false",
        )
        ev.wait_log("consuming")
        b.publish(hang_queue, encode(hang))
        wait_until(lambda: not alive(ev), 30, "the hung evaluator to exit")
        assert ev.popen.returncode == HUNG_EXIT_CODE
        (event,) = logged(ev, "evaluation_hung")
        assert event["task_id"] == "hang"
        assert event["seconds"] >= 2
        wait_until(lambda: len(results) == 1, 10, "the hung task's result")
        assert b.depth(hang_queue) == 0  # acked: no other evaluator inherits the hang
        assert b.depth(dead_letter_queue(hang_queue)) == 0
        # The supervisor's restart: a fresh evaluator takes the next task as usual.
        fresh = evaluator_proc(
            tmp_path, procs, URL, "after-hang", envs, queue_prefix=prefix, prefetch=1, task_hang_s=2
        )
        b.publish(CP_TASKS, encode(good))
        wait_until(lambda: len(results) == 2, 30, "the fresh evaluator's result")
        assert fresh.stop() == 0
    by_id = {r.task_id: r for r in results if isinstance(r, EvaluationResult)}
    for outcome in by_id["hang"].outcomes:
        assert outcome.returns == (floor, floor)
        assert outcome.error is not None
        assert "hung" in outcome.error
    assert by_id["good"].outcomes == honest_result(good, "x").outcomes


def test_hung_env_settles_its_task_and_the_evaluator_goes_on_with_a_new_child(
    tmp_path: Path,
) -> None:
    """Tasks played in a child process (the default): after task_hang_s a hung task gets
    floor outcomes and the child is killed; the evaluator never exits, answers the next
    task, and frees a second hang the same way."""
    prefix = new_prefix()
    cfg = config(**TWO_BY_TWO)
    floor = cfg["max_number_of_steps"] * cfg["minimum_reward"]
    hang_queue = tasks("EzFault/Hang-v0")
    hangs = [make_task(cfg, [0, 1], [0, 1], f"hang-{n}", env_id="EzFault/Hang-v0") for n in (1, 2)]
    good = make_task(config(), [1, 2], [0], "good")
    with bus(prefix) as b, processes() as procs:
        results = b.collect(RESULTS_QUEUE)
        envs = "EzFault/Hang-v0,CartPole-v1"
        ev = evaluator_proc(tmp_path, procs, URL, "hang", envs, queue_prefix=prefix, task_hang_s=2)
        ev.wait_log("consuming")
        b.publish(hang_queue, encode(hangs[0]))
        wait_until(lambda: len(results) == 1, 30, "the hung task's result")
        b.publish(CP_TASKS, encode(good))
        wait_until(lambda: len(results) == 2, 30, "the next task's result")
        b.publish(hang_queue, encode(hangs[1]))
        wait_until(lambda: len(results) == 3, 30, "the second hung task's result")
        assert alive(ev)
        assert [e["task_id"] for e in logged(ev, "evaluation_hung")] == ["hang-1", "hang-2"]
        assert ev.metric("ezspark_evaluator_errors_total", {"kind": "hung"}) == 2
        assert b.depth(hang_queue) == 0
        assert b.depth(dead_letter_queue(hang_queue)) == 0
        assert ev.stop() == 0
    by_id = {r.task_id: r for r in results if isinstance(r, EvaluationResult)}
    for task_id in ("hang-1", "hang-2"):
        for outcome in by_id[task_id].outcomes:
            assert outcome.returns == (floor, floor)
            assert "hung" in str(outcome.error)
    assert by_id["good"].outcomes == honest_result(good, "x").outcomes
