"""A generation round driven by hand: in-memory broker, a clock the test moves, and
evaluators played by the test (which answers with the real evaluation)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry

from ezspark_common.broker.memory import InMemoryBroker
from ezspark_common.config import config_with, load_config
from ezspark_common.evaluators import InProcessEvaluator
from ezspark_common.messages import (
    EnvSpace,
    EvaluationResult,
    EvaluationTask,
    EvaluatorAnnounced,
    decode,
    tasks_queue,
)
from ezspark_common.tasks import evaluate_task
from ezspark_common.training import TrainingState, start
from ezspark_evolver.context import Context
from ezspark_evolver.dispatch import Round, RoundOutcome
from ezspark_evolver.fairshare import Scheduler
from ezspark_evolver.metrics import EvolverMetrics
from ezspark_evolver.registry import EvaluatorRegistry
from ezspark_evolver.settings import EvolverSettings
from ezspark_evolver.store import TrainingStore

CONFIG = config_with(
    load_config("examples/cartpole.json"),
    initial_population=24,
    max_number_of_games=2,
    sub_games=1,
    max_number_of_steps=60,
    safeness=0.0,
)
QUEUE = tasks_queue("CartPole-v1")


class Clock:
    """Monotonic time that only the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A Round on its own thread, its published tasks, and a way to answer them."""

    def __init__(self, tmp: Path, evaluators: int, state: TrainingState, sizes: list[int]) -> None:
        self.clock = Clock()
        self.broker = InMemoryBroker()
        registry = EvaluatorRegistry(120.0, clock=self.clock)
        for i in range(evaluators):
            registry.announced(
                EvaluatorAnnounced(
                    evaluator_id=f"ev{i}",
                    interval_s=1e6,
                    envs=[
                        EnvSpace(
                            env_id="CartPole-v1",
                            input_size=4,
                            output_size=2,
                            action_space="Discrete(2)",
                            observation_space="Box",
                        )
                    ],
                )
            )
        settings = EvolverSettings(data_dir=str(tmp), announce_grace_s=0.0)
        self.metrics = CollectorRegistry()
        self.ctx = Context(
            settings=settings,
            broker=self.broker,
            store=TrainingStore(tmp),
            metrics=EvolverMetrics.create(self.metrics),
            registry=registry,
            scheduler=Scheduler(registry),
            clock=self.clock,
        )
        self.round = Round(self.ctx, "t", "alice", state, sizes, set(), lambda _e: None)
        self.result: RoundOutcome | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.result = self.round.run()

    def published(self, count: int) -> list[EvaluationTask]:
        """Wait until ``count`` messages were published in all; the new ones, decoded."""
        deadline = time.monotonic() + 10
        while len(self.broker.messages(QUEUE)) < count:
            assert time.monotonic() < deadline, "round published too little"
            time.sleep(0.01)
        tasks = []
        for body in self.broker.messages(QUEUE):
            task = decode(body)
            assert isinstance(task, EvaluationTask)
            tasks.append(task)
        return tasks

    def answer(self, task: EvaluationTask, evaluator: str, seconds: float = 0.1) -> None:
        """Deliver the honest result of ``task`` as ``evaluator``."""
        outcomes = evaluate_task(task)
        self.round.deliver(
            EvaluationResult(
                task_id=task.task_id,
                training_id="t",
                generation=task.generation,
                evaluator_id=evaluator,
                duration_s=seconds,
                attempt=task.attempt,
                outcomes=outcomes,
            )
        )


@contextmanager
def running(
    tmp: Path, evaluators: int, config: object = CONFIG, sizes: list[int] | None = None
) -> Iterator[Harness]:
    """A started harness; the round must have finished when the block ends."""
    state = start(config)  # type: ignore[arg-type]
    harness = Harness(tmp, evaluators, state, sizes or [6, 6, 6, 6])
    harness.thread.start()
    yield harness
    harness.thread.join(10)
    assert not harness.thread.is_alive(), "round did not finish"


def _reference() -> dict[int, object]:
    return dict(InProcessEvaluator().evaluate(start(CONFIG).population, CONFIG).outcomes)


def test_round_keeps_a_bounded_window_in_flight_and_equals_local_evaluation(tmp_path: Path) -> None:
    """With 2 evaluators the window is 3 tasks: no more are published until answers come;
    the merged outcomes equal the in-process evaluation."""
    with running(tmp_path, evaluators=2) as h:
        first = h.published(3)
        time.sleep(0.1)
        assert len(h.broker.messages(QUEUE)) == 3  # 8 tasks in all, only the window out
        answered = 0
        while answered < 8:
            tasks = h.published(answered + 1)
            for task in tasks[answered:]:
                h.answer(task, f"ev{answered % 2}")
                answered += 1
        assert first[0].task_id.endswith(":t0")
    assert h.result is not None
    assert h.result.outcomes == _reference()


def test_idle_evaluators_get_a_speculative_copy_of_the_last_open_task(tmp_path: Path) -> None:
    """Every task answered but one, evaluators idle: after the typical task time the last
    task goes out again (attempt 1); the first answer completes the round."""
    with running(tmp_path, evaluators=8, sizes=[12, 12]) as h:
        tasks = h.published(4)
        for task in tasks[1:]:
            h.answer(task, "ev1")
        time.sleep(0.2)
        assert len(h.broker.messages(QUEUE)) == 4  # too early: the clock has not moved
        h.clock.now += 1.0  # past the typical task time, well before the 60 s deadline
        h.round.wake()
        copies = h.published(5)
        assert copies[4].task_id == tasks[0].task_id
        assert copies[4].attempt == 1
        h.answer(copies[4], "ev2")
    assert h.result is not None
    assert h.result.outcomes == _reference()
    assert h.metrics.get_sample_value("ezspark_evolver_tasks_speculative_total") == 1


def test_single_evaluator_skips_rechecks_instead_of_looping(tmp_path: Path) -> None:
    """safeness 1 with one live evaluator: no re-check is published, every sampled genome
    is counted as skipped (once per task it is in: 24 genomes × 2 game groups), and the
    round ends."""
    config = config_with(CONFIG, safeness=1.0)
    with running(tmp_path, evaluators=1, config=config) as h:
        for task in h.published(2)[:2]:
            h.answer(task, "ev0")
        answered = 2
        while answered < 8:
            tasks = h.published(answered + 1)
            for task in tasks[answered:]:
                h.answer(task, "ev0")
                answered += 1
    assert h.result is not None
    assert h.result.skipped_checks == 24 * 2
    assert h.result.checks == 0
    assert len(h.broker.messages(QUEUE)) == 8  # the 8 tasks, no re-check
