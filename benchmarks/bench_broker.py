"""What RabbitMQ costs, and what a second evaluator buys.

- Broker overhead: CartPole-v1, 1,000 genomes × 5 games, evaluated in this process from the
  genomes themselves (as ``ezspark train`` does: no message, no copy) versus by one
  ``ezspark-evaluator`` process over the real RabbitMQ, cut as the evolver cuts a
  generation for one evaluator once it knows the task cost (``tasks.plan_chunks``); timed
  from building the first task message to decoding the last result (the evaluator is
  started and warmed up beforehand); best of 5 rounds each, the two sides alternating.
- Scale-out: LunarLander-v3 tasks through 1 evaluator, then through 2; env-steps/s ratio.

Queues get a unique prefix, so the benchmark never touches a running stack's queues.  Tasks
go to their environment's queue (``tasks_queue``); each evaluator process serves exactly
that environment (``EZSPARK_ENVS``) and runs with its default prefetch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ezspark_common import rng as rngs
from ezspark_common.broker import Delivery, connect
from ezspark_common.config import config_with, load_config
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.packed import PackedGenomes
from ezspark_common.neat.population import initial_population
from ezspark_common.trainer.tasks import plan_chunks, split_tasks
from ezspark_common.wire.messages import (
    ANNOUNCE_EXCHANGE,
    ANNOUNCE_REQUESTS_EXCHANGE,
    RESULTS_QUEUE,
    EvaluationResult,
    EvaluationTask,
    decode,
    encode,
    tasks_queue,
)
from ezspark_common.wire.routing import fronted_queues

BROKER_URL = os.environ.get("EZSPARK_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
BIN = Path(sys.executable).parent


def _genomes(example: str, count: int) -> tuple[list[Genome], Any]:
    config = config_with(load_config(example), initial_population=count, max_population=count)
    return list(initial_population(config).genomes.values()), config


def _tasks(
    genomes: list[Genome], config: Any, batch: int | list[int], prefix: str
) -> list[EvaluationTask]:
    """Tasks of ``batch`` genomes each, or of the given chunk sizes, as ``split_tasks`` cuts
    them (every task plays all the games)."""
    seeds = rngs.game_seeds(config.seed, 0, config.max_number_of_games)
    chunks = split_tasks(list(range(len(genomes))), 1, 1, batch)
    return [
        _task(config, f"{prefix}{spec.index}", seeds, [genomes[k] for k in spec.genome_keys])
        for spec in chunks
    ]


def _task(config: Any, task_id: str, seeds: list[int], genomes: list[Genome]) -> EvaluationTask:
    """One task as the evolver builds it (genomes packed into columns)."""
    return EvaluationTask(
        task_id=task_id,
        training_id="bench",
        generation=0,
        env_id=config.gym_game_name,
        game_indices=list(range(len(seeds))),
        game_seeds=seeds,
        max_steps=config.max_number_of_steps,
        reward_floor=config.reward_floor,
        input_size=config.input_size,
        output_size=config.output_size,
        genomes=PackedGenomes.pack(genomes),
    )


def _in_process(config: Any, genomes: list[Genome], batch: int | list[int]) -> tuple[float, int]:
    """Evaluate the genomes themselves, cut like the tasks, as the embedded trainer does."""
    seeds = rngs.game_seeds(config.seed, 0, config.max_number_of_games)
    chunks = split_tasks(list(range(len(genomes))), 1, 1, batch)
    started, steps = time.perf_counter(), 0
    for spec in chunks:
        out = evaluate_batch([genomes[k] for k in spec.genome_keys], GameSetup.of(config), seeds)
        steps += sum(o.steps for o in out)
    return time.perf_counter() - started, steps


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process, then wait for each (SIGKILL after 30 s)."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


class _Stack:
    """Evaluator processes serving ``env_id`` on private queues, plus a result collector."""

    def __init__(self, evaluators: int, env_id: str) -> None:
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}."
        env = dict(
            os.environ,
            EZSPARK_BROKER_URL=BROKER_URL,
            EZSPARK_QUEUE_PREFIX=self.prefix,
            EZSPARK_LOG_LEVEL="WARNING",
            EZSPARK_ENVS=env_id,
        )
        self.procs = [
            subprocess.Popen(
                [str(BIN / "ezspark-evaluator")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(env, EZSPARK_METRICS_PORT=str(19300 + i)),
            )
            for i in range(evaluators)
        ]
        # Fronted like the evaluators' own broker: their results go through the exchange.
        self.broker = connect(BROKER_URL, fronted=fronted_queues(self.prefix))
        self.tasks_q = tasks_queue(env_id, self.prefix)
        self.results_q = self.prefix + RESULTS_QUEUE
        for q in (self.tasks_q, self.results_q):
            self.broker.declare(q)
        self.results: dict[str, EvaluationResult] = {}
        self.cond = threading.Condition()
        self.broker.consume(self.results_q, self._on_result, prefetch=50)
        threading.Thread(target=self.broker.run, daemon=True).start()

    def _on_result(self, delivery: Delivery) -> None:
        msg = decode(delivery.body)
        delivery.ack()
        if isinstance(msg, EvaluationResult):
            with self.cond:
                self.results[msg.task_id] = msg
                self.cond.notify_all()

    def run(self, tasks: list[EvaluationTask], timeout: float = 900) -> tuple[float, int]:
        """Publish the tasks and wait for every result; seconds and env steps."""
        return self.run_built(lambda: tasks, timeout)

    def run_built(
        self, build: Callable[[], list[EvaluationTask]], timeout: float = 900
    ) -> tuple[float, int]:
        """Build the tasks (timed, as the evolver builds them), publish them and wait for
        every result; seconds and env steps."""
        started = time.perf_counter()
        tasks = build()
        wanted = {t.task_id for t in tasks}
        self.broker.publish_many(self.tasks_q, [(encode(t), t.task_id) for t in tasks])
        with self.cond:
            if not self.cond.wait_for(lambda: wanted <= self.results.keys(), timeout):
                raise TimeoutError("evaluators did not answer every task")
        seconds = time.perf_counter() - started
        steps = sum(int(self.results[tid].outcomes.steps.sum()) for tid in wanted)
        return seconds, steps

    def close(self) -> None:
        """Stop the evaluators; delete the private queues and their exchanges."""
        stop_processes(self.procs)
        self.broker.stop()
        cleaner = connect(BROKER_URL)  # a fresh connection: our consumer is gone by now
        delete = getattr(cleaner, "delete", None)
        if delete is not None:
            for q in (self.tasks_q, self.results_q):
                delete(q)
        delete_exchange = getattr(cleaner, "delete_exchange", None)
        if delete_exchange is not None:
            for exchange in (ANNOUNCE_EXCHANGE, ANNOUNCE_REQUESTS_EXCHANGE):
                delete_exchange(self.prefix + exchange)
            delete_exchange(self.results_q)  # the results queue is fed through its own
        cleaner.stop()


def overhead(quick: bool) -> dict[str, Any]:
    """CartPole-v1, 1,000 genomes × 5 games through one evaluator over RabbitMQ, cut as the
    evolver cuts a generation for one evaluator once it knows the task cost
    (``plan_chunks``), against the same genomes evaluated in this process in one batch
    (what ``ezspark train`` does), best of 7 interleaved rounds each.

    The cost is what the evolver learns from the generation before: with one evaluator
    and no cost known yet it sends the generation as one task, and that task's time per
    genome plans the next.  (Until 2026-12-06 the cost came from a 200-genome batch, which
    overstates a big batch's cost per genome, since a lockstep batch pays a fixed cost per
    step: on slower machines the row then cut the generation in two, which the evolver
    would not.)"""
    genomes, config = _genomes("examples/cartpole.json", 1000)
    stack = _Stack(1, config.gym_game_name)
    remote, local = [], []
    try:
        stack.run(_tasks(genomes[:20], config, 20, "warm-"))
        first = plan_chunks(len(genomes), 1, 1)  # the first generation: no cost known
        seconds = sum(_in_process(config, genomes[:n], n)[0] for n in first)
        sizes = plan_chunks(len(genomes), 1, 1, seconds_per_genome=seconds / len(genomes))
        # Interleaved rounds: this machine's speed drifts by tens of percent over minutes,
        # and every side must see the same drift.
        for i in range(3 if quick else 7):
            remote.append(stack.run_built(partial(_tasks, genomes, config, sizes, f"r{i}-"))[0])
            local.append(_in_process(config, genomes, len(genomes))[0])
    finally:
        stack.close()
    best_remote, best_local = min(remote), min(local)
    return {
        "in_process_seconds": best_local,
        "rabbitmq_seconds": best_remote,
        "overhead": best_remote / best_local - 1.0,
        "tasks": len(sizes),
        "task_sizes": sizes,
        "genomes": 1000,
    }


def scale_out(quick: bool) -> dict[str, Any]:
    """LunarLander-v3 env-steps/s through one evaluator, then two."""
    count = 60 if quick else 200
    genomes, config = _genomes("examples/lunarlander.json", count)
    rates = {}
    for n in (1, 2):
        stack = _Stack(n, config.gym_game_name)
        try:
            stack.run(_tasks(genomes[: n * 2], config, 1, f"warm{n}-"))
            seconds, steps = stack.run(_tasks(genomes, config, 10, f"s{n}-"))
        finally:
            stack.close()
        rates[n] = steps / seconds
    return {
        "one_evaluator_steps_per_s": rates[1],
        "two_evaluators_steps_per_s": rates[2],
        "speedup": rates[2] / rates[1],
        "genomes": count,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Both broker figures."""
    return {"overhead": overhead(quick), "scale_out": scale_out(quick)}


def rows(r: dict[str, Any]) -> list[str]:
    """Table rows for run.py."""
    o, s = r["overhead"], r["scale_out"]
    return [
        f"| broker overhead, CartPole-v1 1,000 genomes, 1 evaluator over RabbitMQ "
        f"({o['tasks']} task(s), as the evolver cuts them) vs one in-process batch | "
        f"{o['rabbitmq_seconds']:.3f} s | {o['in_process_seconds']:.3f} s in-process | "
        f"+{100 * o['overhead']:.1f} % | ≤ 10 % | "
        f"{'met' if o['overhead'] <= 0.10 else 'NOT met'} |",
        f"| LunarLander-v3 throughput, 2 evaluators vs 1 | "
        f"{s['two_evaluators_steps_per_s'] / 1e3:.1f} k steps/s | "
        f"{s['one_evaluator_steps_per_s'] / 1e3:.1f} k steps/s (1 evaluator) | "
        f"{s['speedup']:.2f}× | ≥ 1.7× | {'met' if s['speedup'] >= 1.7 else 'NOT met'} |",
    ]
