"""The evolver against the real RabbitMQ: results matching, re-dispatch, commands, events.

The evolver runs on a thread of the test (so its metrics registry can be read); the
evaluator is either a real evaluator service on a thread or a scripted one that misbehaves
on purpose.  Every finished run is compared with the embedded trainer's run of the same
config (``run_embedded`` with ``InProcessEvaluator()``).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path
from typing import Any

from ezspark_common.broker import Delivery
from ezspark_common.neat.genome import Genome
from ezspark_common.wire.messages import (
    COMMANDS_QUEUE,
    RESULTS_QUEUE,
    EvaluationResult,
    EvaluationTask,
    StopRequested,
    TrainingFailed,
    dead_letter_queue,
    decode,
    encode,
)
from tests.integration.services.harness import (
    CP_TASKS,
    Bus,
    assert_same_run,
    bus,
    config,
    embedded,
    evaluator_thread,
    evolver_thread,
    finished,
    honest_result,
    make_task,
    new_prefix,
)
from tests.support.waiting import wait_until


def tampered(result: EvaluationResult, **fields: Any) -> EvaluationResult:
    """The same result with every return off by 1000 (so using it would change the run)."""
    outcomes = dataclasses.replace(result.outcomes, returns=result.outcomes.returns + 1000.0)
    return result.model_copy(update={"outcomes": outcomes, **fields})


def answer(b: Bus, result: EvaluationResult) -> None:
    """Publish a result as an evaluator would."""
    b.publish(RESULTS_QUEUE, encode(result))


def test_distributed_run_equals_embedded_run_and_reports_every_generation(tmp_path: Path) -> None:
    """With one real evaluator (a re-check needs a second one, so they are skipped and
    counted), the final population equals the embedded run's, and the gateway gets one
    report per generation and a TrainingFinished carrying the champion."""
    prefix, tid, cfg = new_prefix(), f"t-{uuid.uuid4().hex[:8]}", config(safeness=0.5)
    with bus(prefix) as b, evaluator_thread(prefix), evolver_thread(prefix, tmp_path) as evo:
        b.request(tid, cfg)
        state = finished(tmp_path, tid)
        wait_until(lambda: b.events_of(tid, "training_finished"), 10, "TrainingFinished")
        assert evo.metric("ezspark_evolver_safeness_skipped_total") > 0
        assert evo.metric("ezspark_evolver_safeness_mismatches_total") == 0
        assert evo.metric("ezspark_evolver_tasks_in_flight") == 0
    want = embedded(cfg)
    assert_same_run(state, want)
    reports = b.events_of(tid, "generation_report")
    assert sorted({r.generation for r in reports}) == list(range(cfg["generations"]))
    (done,) = b.events_of(tid, "training_finished")
    assert done.reason == "generations"
    assert done.generations == cfg["generations"]
    assert want.best is not None
    assert Genome.from_wire(done.best_genome.model_dump()).to_wire() == want.best.genome.to_wire()
    assert (tmp_path / tid / "best.json").is_file()
    assert (tmp_path / tid / "genomes" / "gen-000000.json").is_file()


def test_bad_messages_and_invalid_requests_never_crash_the_evolver(tmp_path: Path) -> None:
    """Junk on the commands and results queues is dead-lettered and counted; a request whose
    config breaks a rule, exceeds a quota or carries an unsafe id is answered with
    TrainingFailed naming the problem, and nothing runs."""
    prefix = new_prefix()
    with bus(prefix) as b, evolver_thread(prefix, tmp_path) as evo:
        b.publish(COMMANDS_QUEUE, b"\x00garbage")
        b.publish(RESULTS_QUEUE, encode(StopRequested(training_id="wrong-queue")))
        b.publish(RESULTS_QUEUE, encode(honest_result(make_task(config(), [0], [0]), "x")))
        b.request("bad-rule", config(sub_games=5))
        b.request("over-quota", config(max_population=50_000))
        b.request("../escape", config())
        wait_until(
            lambda: len([e for e in b.events if e.kind == "training_failed"]) == 3,
            20,
            "three TrainingFailed events",
        )
        assert evo.service.active() == []
        wait_until(
            lambda: (
                b.depth(dead_letter_queue(COMMANDS_QUEUE)) == 1
                and b.depth(dead_letter_queue(RESULTS_QUEUE)) == 1
            ),
            10,
            "dead letters",
        )
        bad = "ezspark_evolver_bad_messages_total"
        assert evo.metric(bad, {"queue": prefix + COMMANDS_QUEUE}) == 1
        assert evo.metric(bad, {"queue": prefix + RESULTS_QUEUE}) == 1
        assert evo.metric("ezspark_evolver_results_ignored_total", {"reason": "stale"}) == 1
    errors = {e.training_id: e.error for e in b.events if isinstance(e, TrainingFailed)}
    assert "sub_games" in errors["bad-rule"]
    assert "EZSPARK_QUOTA_POPULATION" in errors["over-quota"]
    assert "invalid training id" in errors["../escape"]
    assert not any((tmp_path / name).exists() for name in ("bad-rule", "over-quota"))


def test_duplicate_results_are_ignored(tmp_path: Path) -> None:
    """Every task is answered twice, the second copy with wrong returns: the copies are
    counted as duplicates and the run still equals the embedded one."""
    prefix, tid, cfg = new_prefix(), "dup", config(safeness=0.0)
    answered: list[str] = []
    with bus(prefix) as b, evolver_thread(prefix, tmp_path) as evo:

        def evaluator(delivery: Delivery) -> None:
            task = decode(delivery.body)
            assert isinstance(task, EvaluationTask)
            result = honest_result(task, "scripted")
            answer(b, result)
            answer(b, tampered(result))
            answered.append(task.task_id)
            delivery.ack()

        b.serve(CP_TASKS, evaluator)
        b.request(tid, cfg)
        state = finished(tmp_path, tid)

        def ignored(reason: str) -> float:
            return evo.metric("ezspark_evolver_results_ignored_total", {"reason": reason})

        # A copy arriving after its generation ended is "stale" rather than "duplicate".
        wait_until(
            lambda: ignored("duplicate") + ignored("stale") == len(answered),
            10,
            "every second copy to be ignored",
        )
        assert ignored("duplicate") >= 1
        assert evo.metric("ezspark_evolver_tasks_redispatched_total") == 0
        assert evo.metric("ezspark_evolver_tasks_in_flight") == 0
    assert len(answered) == len(set(answered)) > 0
    assert_same_run(state, embedded(cfg))


def test_overdue_task_is_redispatched_and_late_original_ignored(tmp_path: Path) -> None:
    """Two tasks are swallowed: after task_timeout_s both are re-dispatched with attempt 1
    and answered, and the first one's late original (with wrong returns, sent while the
    generation is still open) is ignored as a duplicate; the run equals the embedded one."""
    prefix, tid, cfg = new_prefix(), "overdue", config(safeness=0.0)
    held: list[EvaluationTask] = []
    # One results handler thread: results are matched in the order they were published.
    with (
        bus(prefix) as b,
        evolver_thread(prefix, tmp_path, task_timeout_s=1.0, results_prefetch=1) as evo,
    ):
        b.announce(["scripted"])

        def evaluator(delivery: Delivery) -> None:
            task = decode(delivery.body)
            assert isinstance(task, EvaluationTask)
            if len(held) < 2 and task.attempt == 0:
                held.append(task)  # never answered: the evolver must send it again
            else:
                answer(b, honest_result(task, "scripted"))
                if held and task.task_id == held[0].task_id and task.attempt > 0:
                    answer(b, tampered(honest_result(held[0], "scripted")))
            delivery.ack()

        b.serve(CP_TASKS, evaluator)
        b.request(tid, cfg)
        state = finished(tmp_path, tid)
        assert evo.metric("ezspark_evolver_tasks_redispatched_total") >= 2
        assert evo.metric("ezspark_evolver_results_ignored_total", {"reason": "duplicate"}) >= 1
    assert len(held) == 2
    assert_same_run(state, embedded(cfg))


def test_lying_recheck_is_outvoted_by_a_third_evaluation(tmp_path: Path) -> None:
    """Scripted evaluators: "even" and "third" answer honestly, "odd" lies on re-checks.
    The tie-break by a third evaluator sides with the honest first result, "odd" is
    quarantined (its tasks go to "even"), and the run equals the embedded one."""
    prefix, tid, cfg = new_prefix(), "lying-check", config(safeness=1.0)
    with bus(prefix) as b, evolver_thread(prefix, tmp_path) as evo:
        b.announce(["even", "odd", "third"])

        def evaluator(delivery: Delivery) -> None:
            task = decode(delivery.body)
            assert isinstance(task, EvaluationTask)
            tail = task.task_id.rsplit(":", 1)[1]  # t<index>, c<index>.<n> or x<index>.<n>
            kind, index = tail[0], int(tail[1:].split(".")[0])
            allowed = [
                e
                for e in ("odd" if index % 2 else "even", "even", "odd", "third")
                if e not in task.avoid_evaluators
            ]
            if not allowed:
                result = EvaluationResult(
                    **{**honest_result(task, "even").model_dump(), "outcomes": [], "declined": True}
                )
            elif allowed[0] == "odd" and kind == "c":
                result = tampered(honest_result(task, "odd"))
            else:
                result = honest_result(task, allowed[0])
            answer(b, result)
            delivery.ack()

        b.serve(CP_TASKS, evaluator)
        b.request(tid, cfg)
        state = finished(tmp_path, tid)
        assert evo.metric("ezspark_evolver_safeness_mismatches_total") > 0
        assert evo.metric("ezspark_evolver_quarantined_evaluators_total") == 1
    assert (tmp_path / tid / "quarantine.json").read_text() == '["odd"]'
    assert_same_run(state, embedded(cfg))


def test_stop_request_stops_after_the_current_generation(tmp_path: Path) -> None:
    """A StopRequested ends a long training after the generation in progress: reason
    "stopped", a checkpoint marked stopped, and the champion so far in the event."""
    prefix, tid, cfg = new_prefix(), "stop-me", config(generations=100_000)
    with bus(prefix) as b, evaluator_thread(prefix), evolver_thread(prefix, tmp_path):
        b.request(tid, cfg)
        wait_until(lambda: b.events_of(tid, "generation_report"), 30, "a first report")
        b.stop_training(tid)
        state = finished(tmp_path, tid)
        wait_until(lambda: b.events_of(tid, "training_finished"), 10, "TrainingFinished")
    (done,) = b.events_of(tid, "training_finished")
    assert done.reason == "stopped"
    assert state.finished == "stopped"
    assert done.generations == len(state.history) < 100
    assert done.best_genome is not None


def test_several_trainings_run_at_once_up_to_the_limit(tmp_path: Path) -> None:
    """Three trainings with max_concurrent_trainings=2: the third starts only once one of
    the first two has finished (its first report comes after a TrainingFinished on the
    events queue), and each ends equal to its own embedded run.  The admission rule itself
    (limit, per-user cap, fairness) is stepped by hand in tests/unit/evolver/."""
    prefix = new_prefix()
    cfgs = {f"many-{seed}": config(seed=seed, generations=3) for seed in (1, 2, 3)}
    with (
        bus(prefix) as b,
        evaluator_thread(prefix),
        evolver_thread(prefix, tmp_path, max_concurrent_trainings=2),
    ):
        for tid, cfg in cfgs.items():
            b.request(tid, cfg)
        states = {tid: finished(tmp_path, tid) for tid in cfgs}
        for tid in cfgs:
            wait_until(lambda t=tid: b.events_of(t, "training_finished"), 10, "TrainingFinished")
        events = list(b.events)

    def first(kind: str, tid: str) -> int:
        return next(i for i, e in enumerate(events) if e.kind == kind and e.training_id == tid)

    third = first("generation_report", "many-3")
    assert min(first("training_finished", t) for t in ("many-1", "many-2")) < third
    for tid, cfg in cfgs.items():
        assert_same_run(states[tid], embedded(cfg))


def test_task_without_any_answer_fails_the_training_instead_of_circulating(tmp_path: Path) -> None:
    """A task the live evaluators take but never answer (it crashes or hangs every one) is
    re-dispatched max_task_attempts times, then the training fails with a clear error."""
    prefix, tid, cfg = new_prefix(), "abandoned", config(generations=5)
    with (
        bus(prefix) as b,
        evolver_thread(prefix, tmp_path, task_timeout_s=0.3, max_task_attempts=2) as evo,
    ):
        b.announce(["black-hole"])
        b.serve(CP_TASKS, lambda delivery: delivery.ack())  # takes every task, answers none
        b.request(tid, cfg)
        wait_until(lambda: b.events_of(tid, "training_failed"), 30, "TrainingFailed")
        assert evo.metric("ezspark_evolver_tasks_redispatched_total") >= 2
    (failed,) = b.events_of(tid, "training_failed")
    assert "no result in 3 attempts" in failed.error
    assert not b.events_of(tid, "training_finished")


def test_training_waits_while_no_evaluator_serves_its_environment(tmp_path: Path) -> None:
    """With no evaluator of its environment the training waits (TrainingWaiting names the
    environment) instead of failing, and finishes like the embedded run once one joins."""
    prefix, tid, cfg = new_prefix(), "waits", config(generations=2)
    with (
        bus(prefix) as b,
        evolver_thread(
            prefix, tmp_path, task_timeout_s=0.3, max_task_attempts=1, announce_grace_s=0.5
        ) as evo,
    ):
        b.request(tid, cfg)
        waiting = wait_until(lambda: b.events_of(tid, "training_waiting"), 20, "waiting")
        assert waiting[0].waiting
        assert "no evaluator serves CartPole-v1" in waiting[0].reason
        assert evo.metric("ezspark_evolver_trainings_waiting") == 1
        time.sleep(1.5)  # many task deadlines pass: still no failure
        assert not b.events_of(tid, "training_failed")
        with evaluator_thread(prefix):
            state = finished(tmp_path, tid)
        assert [e.waiting for e in b.events_of(tid, "training_waiting")][-1] is False
    assert_same_run(state, embedded(cfg))
