"""Shared helpers of the service tests (integration and e2e).

Everything runs against the real RabbitMQ (``EZSPARK_BROKER_URL``, default the local
guest account); an unreachable broker FAILS the test, never skips it.  Each test uses its
own queue prefix (or its own vhost, for the gateway, whose queue names are fixed) and
deletes it afterwards.  Services run either on threads of the test process (to read their
metrics registry directly) or as real processes (to kill them).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import pytest
from prometheus_client import CollectorRegistry

from ezspark_common import rng as rngs
from ezspark_common.broker import Delivery, connect
from ezspark_common.config import parse_config
from ezspark_common.neat.population import population_to_dict
from ezspark_common.trainer.checkpoints import load_checkpoint
from ezspark_common.trainer.embedded import run_embedded
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.tasks import evaluate_task
from ezspark_common.trainer.training import TrainingState, start
from ezspark_common.wire.messages import (
    ANNOUNCE_EXCHANGE,
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    RESULTS_QUEUE,
    TASKS_QUEUE,
    EnvSpace,
    EvaluationResult,
    EvaluationTask,
    EvaluatorAnnounced,
    Message,
    StopRequested,
    TrainingRequested,
    WireGenome,
    decode,
    encode,
)
from ezspark_common.wire.routing import fronted_queues
from ezspark_evaluator.service import EvaluatorService
from ezspark_evaluator.settings import EvaluatorSettings
from ezspark_evolver.service import EvolverService
from ezspark_evolver.settings import EvolverSettings
from tests.integration.services.cleanup import delete_queues
from tests.support.configs import example
from tests.support.waiting import wait_until

URL = os.environ.get("EZSPARK_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
SLOW_ENVS = "tests.integration.services.slow_envs"
QUEUES = (COMMANDS_QUEUE, EVENTS_QUEUE, RESULTS_QUEUE)
_TASK_QUEUES: set[str] = set()  # per-environment task queues the tests touched


def tasks(env_id: str = "CartPole-v1") -> str:
    """The (unprefixed) task queue of ``env_id``; remembered so it is deleted after."""
    name = f"{TASKS_QUEUE}.{env_id}"
    _TASK_QUEUES.add(name)
    return name


CP_TASKS = tasks("CartPole-v1")

# Small and fast: CartPole-v1, 12 genomes, 2 games of at most 60 steps.
BASE_CONFIG: dict[str, Any] = example(
    "cartpole",
    initial_population=12,
    generations=4,
    alone_training_iterations=1,
    max_number_of_games=2,
    sub_games=1,
    max_number_of_steps=60,
    fitness_threshold=None,
    seed=7,
)


def require_rabbitmq(url: str = URL) -> None:
    """Fail (not skip) unless RabbitMQ accepts TCP connections at ``url``."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"RabbitMQ is not reachable at {parts.hostname}:{parts.port}: {exc}")


def finished(data_dir: Path, training_id: str, timeout: float = 90.0) -> TrainingState:
    """Wait until the training's final event went out; its final checkpoint."""
    wait_until(
        lambda: (data_dir / training_id / "final.json").is_file(),
        timeout,
        f"training {training_id} to finish",
    )
    return load_checkpoint(data_dir / training_id)


def generations_done(data_dir: Path, training_id: str) -> int:
    """Generations recorded in the training's checkpoint so far (0 if none yet)."""
    try:
        data = json.loads((data_dir / training_id / "checkpoint.json").read_text())
    except (FileNotFoundError, ValueError):
        return 0
    return int(data.get("history_length", len(data.get("history", []))))


def config(**overrides: Any) -> dict[str, Any]:
    """The base test config with ``overrides``."""
    return {**BASE_CONFIG, **overrides}


@functools.cache
def _embedded(config_json: str) -> TrainingState:
    with tempfile.TemporaryDirectory() as tmp:
        state = start(parse_config(json.loads(config_json)))
        return run_embedded(state, InProcessEvaluator(), Path(tmp))


def embedded(cfg: dict[str, Any]) -> TrainingState:
    """The embedded trainer's final state for ``cfg`` (one worker, in this process)."""
    return _embedded(json.dumps(cfg, sort_keys=True))


def _history(state: TrainingState) -> list[dict[str, Any]]:
    skip = {"seconds", "safeness_checks", "safeness_mismatches"}  # timing and routing only
    return [{k: v for k, v in r.__dict__.items() if k not in skip} for r in state.history]


def assert_same_run(got: TrainingState, want: TrainingState) -> None:
    """Same final population, outcomes, history and champion as the reference run."""
    assert got.finished == want.finished
    assert population_to_dict(got.population) == population_to_dict(want.population)
    assert dict(got.last_outcomes) == dict(want.last_outcomes)
    assert _history(got) == _history(want)
    assert got.best is not None
    assert want.best is not None
    assert got.best.genome.to_wire() == want.best.genome.to_wire()
    assert (got.best.fitness, got.best.generation) == (want.best.fitness, want.best.generation)


def new_prefix() -> str:
    """A queue prefix no other test run uses."""
    return f"test-{uuid.uuid4().hex[:10]}."


class Bus:
    """The test's own connection: publish commands, collect events, peek at queues."""

    def __init__(self, prefix: str, url: str = URL) -> None:
        self.prefix = prefix
        self.broker = connect(url, registry=CollectorRegistry(), fronted=fronted_queues(prefix))
        for name in (*QUEUES, CP_TASKS):
            self.broker.declare(prefix + name)
        self.events: list[Message] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._announcers: list[threading.Thread] = []
        self.broker.consume(prefix + EVENTS_QUEUE, self._on_event, prefetch=10)
        self._thread = threading.Thread(target=self.broker.run, daemon=True)
        self._thread.start()

    def _on_event(self, delivery: Delivery) -> None:
        with self._lock:
            self.events.append(decode(delivery.body))
        delivery.ack()

    def request(self, training_id: str, cfg: dict[str, Any], owner: str = "tester") -> None:
        """Publish a TrainingRequested as the gateway would."""
        msg = TrainingRequested(
            training_id=training_id, owner=owner, config=cfg, requested_at=time.time()
        )
        self.broker.publish(
            self.prefix + COMMANDS_QUEUE,
            encode(msg),
            message_id=f"training_requested:{training_id}",
        )

    def announce(
        self,
        evaluator_ids: Sequence[str],
        env_id: str = "CartPole-v1",
        sizes: tuple[int, int] = (4, 2),
    ) -> None:
        """Keep announcing scripted evaluators (every 0.3 s, until closed), as real ones do;
        repeated because a broadcast made before the evolver subscribed is lost."""

        def loop() -> None:
            while not self._closed.is_set():
                for evaluator_id in evaluator_ids:
                    msg = EvaluatorAnnounced(
                        evaluator_id=evaluator_id,
                        interval_s=60.0,
                        envs=[
                            EnvSpace(
                                env_id=env_id,
                                input_size=sizes[0],
                                output_size=sizes[1],
                                action_space="Discrete",
                                observation_space="Box",
                            )
                        ],
                    )
                    self.broker.broadcast(self.prefix + ANNOUNCE_EXCHANGE, encode(msg))
                self._closed.wait(0.3)

        announcer = threading.Thread(target=loop, daemon=True)
        self._announcers.append(announcer)
        announcer.start()

    def stop_training(self, training_id: str) -> None:
        """Publish a StopRequested."""
        self.broker.publish(
            self.prefix + COMMANDS_QUEUE, encode(StopRequested(training_id=training_id))
        )

    def publish(self, name: str, body: bytes, message_id: str | None = None) -> None:
        """Publish raw bytes to a prefixed queue."""
        self.broker.publish(self.prefix + name, body, message_id=message_id)

    def serve(self, name: str, handler: Callable[[Delivery], None], prefetch: int = 1) -> None:
        """Consume a prefixed queue with ``handler`` (e.g. to play a scripted evaluator)."""
        self.broker.consume(self.prefix + name, handler, prefetch=prefetch)

    def collect(self, name: str) -> list[Message]:
        """Decode and ack every message of a prefixed queue from now on."""
        got: list[Message] = []

        def handler(delivery: Delivery) -> None:
            got.append(decode(delivery.body))
            delivery.ack()

        self.serve(name, handler, prefetch=10)
        return got

    def events_of(self, training_id: str, kind: str) -> list[Any]:
        """Collected events of one kind for one training."""
        with self._lock:
            return [
                e
                for e in self.events
                if e.kind == kind and getattr(e, "training_id", None) == training_id
            ]

    def depth(self, name: str) -> int:
        """Ready messages in a prefixed queue (``name`` may be a dead-letter queue)."""
        return self.broker.queue_depth(self.prefix + name)

    def close(self) -> None:
        """Stop consuming and disconnect."""
        self._closed.set()
        for announcer in self._announcers:  # before the broker stops under their broadcast
            announcer.join(15)
        self.broker.stop()
        self._thread.join(15)


@contextmanager
def bus(prefix: str) -> Iterator[Bus]:
    """A Bus on fresh prefixed queues, all deleted afterwards."""
    require_rabbitmq()
    b = Bus(prefix)
    try:
        yield b
    finally:
        b.close()
        delete_queues(prefix, URL, known=(*QUEUES, *_TASK_QUEUES), fronted=QUEUES)


S = TypeVar("S", EvolverService, EvaluatorService)


class InThread(Generic[S]):
    """A service running on a thread of the test process, with its own metrics registry."""

    def __init__(self, service: S, registry: CollectorRegistry) -> None:
        self.service: S = service
        self.registry = registry
        self.thread = threading.Thread(target=service.run, daemon=True)
        self.thread.start()

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's value (0 when it was never set)."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    def stop(self) -> None:
        """Stop gracefully and wait for ``run()`` to return."""
        self.service.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "service run() did not return after stop()"


@contextmanager
def evolver_thread(
    prefix: str, data_dir: Path, **settings: Any
) -> Iterator[InThread[EvolverService]]:
    """An evolver on a thread; stopped on exit."""
    registry = CollectorRegistry()
    options: dict[str, Any] = {
        "task_batch_size": 4,
        "task_timeout_s": 30.0,
        "announce_grace_s": 2.0,
        **settings,
    }
    cfg = EvolverSettings(
        broker_url=URL, queue_prefix=prefix, data_dir=str(data_dir), metrics_port=0, **options
    )
    broker = connect(URL, registry=registry, fronted=fronted_queues(prefix))
    running = InThread(EvolverService(cfg, broker, registry), registry)
    try:
        yield running
    finally:
        running.stop()


@contextmanager
def evaluator_thread(prefix: str, **settings: Any) -> Iterator[InThread[EvaluatorService]]:
    """An evaluator on a thread; stopped on exit."""
    registry = CollectorRegistry()
    options: dict[str, Any] = {"envs": "CartPole-v1", "announce_interval_s": 1.0, **settings}
    for env in str(options["envs"]).split(","):
        tasks(env.strip())
    cfg = EvaluatorSettings(broker_url=URL, queue_prefix=prefix, metrics_port=0, **options)
    broker = connect(URL, registry=registry, fronted=fronted_queues(prefix))
    running = InThread(EvaluatorService(cfg, broker, registry), registry)
    try:
        yield running
    finally:
        running.stop()


def make_task(
    cfg: dict[str, Any],
    keys: Sequence[int],
    games: Sequence[int],
    task_id: str = "task-1",
    **fields: Any,
) -> EvaluationTask:
    """A task over generation-0 genomes ``keys`` of ``cfg`` on games ``games``."""
    config = parse_config(cfg)
    population = start(config).population
    seeds = rngs.game_seeds(config.seed, 0, config.max_number_of_games)
    values: dict[str, Any] = {
        "task_id": task_id,
        "training_id": "tr-1",
        "generation": 0,
        "env_id": config.gym_game_name,
        "game_indices": list(games),
        "game_seeds": [seeds[g] for g in games],
        "max_steps": config.max_number_of_steps,
        "reward_floor": config.reward_floor,
        "input_size": config.input_size,
        "output_size": config.output_size,
        "genomes": [WireGenome(**population.genomes[k].to_wire()) for k in keys],
    }
    return EvaluationTask(**{**values, **fields})


def honest_result(task: EvaluationTask, evaluator_id: str, offset: float = 0.0) -> EvaluationResult:
    """What a correct evaluator answers to ``task`` (``offset`` added to every return)."""
    outcomes = evaluate_task(task)
    return EvaluationResult(
        task_id=task.task_id,
        training_id=task.training_id,
        generation=task.generation,
        evaluator_id=evaluator_id,
        duration_s=0.0,
        attempt=task.attempt,
        outcomes=dataclasses.replace(outcomes, returns=outcomes.returns + offset),
    )
