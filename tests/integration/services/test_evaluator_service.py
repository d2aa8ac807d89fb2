"""The evaluator service against the real RabbitMQ: poison, env allow-list, clean SIGTERM."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from ezspark_common.broker import Delivery
from ezspark_common.service.announce import ask_evaluators
from ezspark_common.wire.messages import (
    ANNOUNCE_EXCHANGE,
    ANNOUNCE_REQUESTS_EXCHANGE,
    RESULTS_QUEUE,
    EvaluationResult,
    EvaluatorAnnounced,
    StopRequested,
    dead_letter_queue,
    decode,
    encode,
    to_json,
)
from tests.integration.services import slow_envs
from tests.integration.services.harness import (
    CP_TASKS,
    SLOW_ENVS,
    bus,
    config,
    evaluator_thread,
    honest_result,
    make_task,
    new_prefix,
    tasks,
)
from tests.integration.services.procs import Proc, free_port, processes, service_env
from tests.support.waiting import wait_until


def test_poison_task_is_dead_lettered_counted_and_evaluator_keeps_going() -> None:
    """Undecodable bodies, a wrong message kind, a malformed genome and a binary frame cut
    short go to the DLQ, are counted as poison, and the evaluator still answers the good task
    after them."""
    prefix = new_prefix()
    cfg = config()
    good = make_task(cfg, keys=[0, 1, 2], games=[0, 1])
    bad_genome = json.loads(to_json(make_task(cfg, keys=[0], games=[0], task_id="bad")))
    bad_genome["genomes"][0]["dst"][0] = 999  # a connection to a node that does not exist
    cut_short = encode(make_task(cfg, keys=[0, 1], games=[0], task_id="cut"))[:-40]
    with bus(prefix) as b, evaluator_thread(prefix, evaluator_id="ev-poison") as ev:
        results = b.collect(RESULTS_QUEUE)
        b.publish(CP_TASKS, b"{not json", message_id="junk")
        b.publish(CP_TASKS, encode(StopRequested(training_id="x")), message_id="kind")
        b.publish(CP_TASKS, json.dumps(bad_genome).encode(), message_id="genome")
        b.publish(CP_TASKS, cut_short, message_id="cut")
        b.publish(CP_TASKS, encode(good), message_id="good")
        wait_until(lambda: results, 20, "the good task's result")
        wait_until(lambda: b.depth(dead_letter_queue(CP_TASKS)) == 4, 10, "4 dead letters")
        assert ev.metric("ezspark_evaluator_errors_total", {"kind": "poison"}) == 4
        assert ev.metric("ezspark_evaluator_genomes_total") == 3
    (result,) = results
    assert isinstance(result, EvaluationResult)
    assert result.evaluator_id == "ev-poison"
    assert result.outcomes == honest_result(good, "ev-poison").outcomes


def test_env_outside_allow_list_is_neither_served_nor_evaluated() -> None:
    """An evaluator asked to serve an environment of a module the operator did not allow
    leaves it out (not announced, no queue consumed); a task naming it that reaches a queue
    it does serve is declined unevaluated (no outcomes, counted), and the evaluator goes on."""
    prefix = new_prefix()
    cfg = config(minimum_reward=-1)
    evil = make_task(cfg, keys=[0, 1], games=[0], task_id="evil", env_id="os:Evil-v0")
    good = make_task(cfg, keys=[3], games=[1], task_id="good")
    with (
        bus(prefix) as b,
        evaluator_thread(prefix, envs="CartPole-v1,os:Evil-v0", evaluator_id="ev-allow") as ev,
    ):
        assert [e.env_id for e in ev.service.envs] == ["CartPole-v1"]
        assert [e.env_id for e in ev.service.announcement().envs] == ["CartPole-v1"]
        results = b.collect(RESULTS_QUEUE)
        b.publish(CP_TASKS, encode(evil))  # the wrong queue: only "CartPole-v1" is served
        b.publish(CP_TASKS, encode(good))
        wait_until(lambda: len(results) == 2, 20, "both results")
        assert ev.metric("ezspark_evaluator_tasks_declined_total") == 1
        assert ev.metric("ezspark_evaluator_genomes_total") == 1
        assert ev.metric("ezspark_evaluator_errors_total", {"kind": "env_not_allowed"}) == 0
    by_id = {r.task_id: r for r in results if isinstance(r, EvaluationResult)}
    assert by_id["evil"].declined
    assert len(by_id["evil"].outcomes) == 0
    assert by_id["evil"].evaluator_id == "ev-allow"
    assert not by_id["good"].declined
    assert by_id["good"].outcomes == honest_result(good, "x").outcomes


def test_sigterm_finishes_task_in_hand_requeues_the_next_and_exits_zero(tmp_path: Path) -> None:
    """On SIGTERM the evaluator publishes the result of the task it is evaluating, gives the
    prefetched task back to the queue, and exits with status 0."""
    prefix = new_prefix()
    cfg = config(gym_game_name=slow_envs.ENV_ID)
    queue = tasks(slow_envs.ENV_ID)
    first = make_task(cfg, keys=[0, 1, 2, 3], games=[0], task_id="first")
    second = make_task(cfg, keys=[4, 5], games=[0], task_id="second")
    with bus(prefix) as b, processes() as procs:
        results = b.collect(RESULTS_QUEUE)
        port = free_port()
        proc = Proc(
            "ezspark-evaluator",
            tmp_path / "evaluator.log",
            service_env(
                queue_prefix=prefix,
                metrics_port=port,
                env_modules=SLOW_ENVS,
                envs=slow_envs.ENV_ID,
                announce_interval_s=1.0,
                prefetch=2,
                test_slow_reset_s=0.4,
            ),
        )
        procs.append(proc)
        proc.wait_log("consuming", queue=prefix + queue)
        b.publish(queue, encode(first))
        b.publish(queue, encode(second))
        wait_until(
            lambda: proc.metric("ezspark_evaluator_tasks_in_flight") == 2, 20, "both tasks in hand"
        )
        assert proc.stop(timeout=30) == 0
        wait_until(lambda: b.depth(queue) == 1, 10, "the other task back in the queue")
    (result,) = results  # either task may have been picked first
    assert isinstance(result, EvaluationResult)
    task = {"first": first, "second": second}[result.task_id]
    assert result.outcomes == honest_result(task, "x").outcomes


def test_evaluator_announces_at_once_when_a_service_asks() -> None:
    """With a one-hour announce interval, an AnnounceRequested still gets an announcement
    of the served environments within seconds (what a restarted gateway relies on)."""
    prefix = new_prefix()
    heard: list[EvaluatorAnnounced] = []

    def on_announcement(delivery: Delivery) -> None:
        msg = decode(delivery.body)
        if isinstance(msg, EvaluatorAnnounced) and not msg.leaving:
            heard.append(msg)
        delivery.ack()

    with bus(prefix) as b, evaluator_thread(prefix, announce_interval_s=3600.0):
        b.broker.subscribe(prefix + ANNOUNCE_EXCHANGE, on_announcement)
        time.sleep(1.0)  # the start-up announcement has come and gone
        before = len(heard)
        ask_evaluators(
            b.broker, prefix + ANNOUNCE_REQUESTS_EXCHANGE, "test", threading.Event(), at=(0.0,)
        )
        wait_until(lambda: len(heard) > before, 10, "an announcement on request")
    assert [e.env_id for e in heard[-1].envs] == ["CartPole-v1"]
