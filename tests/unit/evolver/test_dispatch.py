"""A generation round's rules, driven by hand: the in-memory broker delivers on the test's
thread (``drain``), a clock only the test moves, and evaluators played by the test (which
answer with the real evaluation, or lie, decline or stay silent).  No RabbitMQ, no sleeps,
no threads: every step below happens in the same order on every run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from ezspark_common.broker import Delivery
from ezspark_common.broker.memory import InMemoryBroker
from ezspark_common.config import TrainingConfig, config_with, load_config
from ezspark_common.evaluation.batch import Outcome, OutcomeTable
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.generations import GenerationOutcome
from ezspark_common.trainer.tasks import evaluate_task, safeness_sample
from ezspark_common.trainer.training import start
from ezspark_common.wire.messages import (
    EnvSpace,
    EvaluationResult,
    EvaluationTask,
    EvaluatorAnnounced,
    decode,
    encode,
    tasks_queue,
)
from ezspark_evolver.context import Context
from ezspark_evolver.dispatch import Round
from ezspark_evolver.fairshare import Scheduler, Usage
from ezspark_evolver.metrics import EvolverMetrics
from ezspark_evolver.registry import EvaluatorRegistry
from ezspark_evolver.rules import RoundRules, TaskAbandonedError
from ezspark_evolver.settings import EvolverSettings
from ezspark_evolver.store import TrainingStore
from tests.support.configs import EXAMPLES

CONFIG = config_with(
    load_config(EXAMPLES / "cartpole.json"),
    initial_population=24,
    max_number_of_games=2,
    sub_games=1,
    max_number_of_steps=60,
    safeness=0.0,
)
QUEUE = tasks_queue("CartPole-v1")
TIMEOUT_S = 10.0  # task_timeout_s of these rounds

# What a played evaluator does with a task: an answer to publish, or None (silence).
Policy = Callable[[EvaluationTask], EvaluationResult | None]


class Clock:
    """Monotonic time that only the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def honest(task: EvaluationTask, evaluator: str, seconds: float = 0.1) -> EvaluationResult:
    """The true result of ``task``, as ``evaluator`` gives it."""
    return EvaluationResult(
        task_id=task.task_id,
        training_id=task.training_id,
        generation=task.generation,
        evaluator_id=evaluator,
        duration_s=seconds,
        attempt=task.attempt,
        outcomes=evaluate_task(task),
    )


def declined(task: EvaluationTask, evaluator: str) -> EvaluationResult:
    """``task`` given back unevaluated by ``evaluator``."""
    return EvaluationResult(
        task_id=task.task_id,
        training_id=task.training_id,
        generation=task.generation,
        evaluator_id=evaluator,
        duration_s=0.0,
        attempt=task.attempt,
        outcomes=[],
        declined=True,
    )


def lied(result: EvaluationResult) -> EvaluationResult:
    """``result`` with every return off by one."""
    table = result.outcomes
    assert isinstance(table, OutcomeTable)
    wrong = OutcomeTable(table.keys, table.returns + 1.0, table.steps, dict(table.errors))
    return result.model_copy(update={"outcomes": wrong})


def kind_of(task: EvaluationTask) -> str:
    """``t`` (a task), ``c`` (a safeness re-check) or ``x`` (a tie-break)."""
    return task.task_id.rsplit(":", 1)[1][0]


class Harness:
    """A round wired to an in-memory broker; the test's policy plays the evaluators."""

    def __init__(
        self,
        tmp: Path,
        evaluators: list[str],
        config: TrainingConfig = CONFIG,
        sizes: list[int] | None = None,
        quarantine: set[str] | None = None,
        **settings: Any,
    ) -> None:
        self.clock = Clock()
        self.broker = InMemoryBroker()
        self.registry = EvaluatorRegistry(120.0, clock=self.clock)
        for evaluator in evaluators:
            self.announce(evaluator)
        self.metrics = CollectorRegistry()
        self.ctx = Context(
            settings=EvolverSettings(
                data_dir=str(tmp), announce_grace_s=0.0, task_timeout_s=TIMEOUT_S, **settings
            ),
            broker=self.broker,
            store=TrainingStore(tmp),
            metrics=EvolverMetrics.create(self.metrics),
            registry=self.registry,
            scheduler=Scheduler(self.registry, usage=Usage(clock=self.clock)),
            clock=self.clock,
        )
        self.quarantined: list[str] = []
        self.waiting: list[str | None] = []
        self.progress: list[tuple[int, int, int]] = []
        self.seen: list[EvaluationTask] = []  # every task copy an evaluator took
        self.policy: Policy = lambda task: honest(task, "ev0")
        state = start(config)
        rules = RoundRules(
            self.ctx,
            "t",
            "alice",
            state.population,
            config,
            sizes or [6, 6, 6, 6],
            quarantine or set(),
            self.quarantined.append,
            round_id="r0",
        )
        self.round = Round(
            self.ctx,
            rules,
            self.waiting.append,
            lambda *p: self.progress.append(p),
        )
        self.ctx.register("t", self.round)
        self.broker.declare(self.ctx.results_queue)
        self.broker.consume(self.ctx.results_queue, self._on_result, prefetch=1000)
        self.reference = InProcessEvaluator().evaluate(state.population, config)

    def announce(self, evaluator: str) -> None:
        """``evaluator`` says it serves CartPole-v1."""
        space = EnvSpace(
            env_id="CartPole-v1",
            input_size=4,
            output_size=2,
            action_space="Discrete(2)",
            observation_space="Box",
        )
        self.registry.announced(
            EvaluatorAnnounced(evaluator_id=evaluator, interval_s=1e6, envs=[space])
        )

    def open_queue(self) -> None:
        """The played evaluators start consuming the task queue."""
        self.broker.consume(QUEUE, self._on_task, prefetch=1000)

    def _on_task(self, delivery: Delivery) -> None:
        task = decode(delivery.body)
        assert isinstance(task, EvaluationTask)
        self.seen.append(task)
        answer = self.policy(task)
        if answer is not None:
            self.broker.publish(self.ctx.results_queue, encode(answer))
        delivery.ack()

    def _on_result(self, delivery: Delivery) -> None:
        result = decode(delivery.body)
        assert isinstance(result, EvaluationResult)
        reason = self.ctx.route(result)
        if reason is not None:
            self.ctx.metrics.ignored.labels(reason=reason).inc()
        delivery.ack()

    def settle(self) -> None:
        """Publish, deliver and answer until nothing moves without the clock."""
        for _ in range(1000):
            self.round.pump()
            if self.broker.drain() == 0:
                return
        raise AssertionError("the round never settled")

    def later(self, seconds: float) -> None:
        """Move the clock, then settle."""
        self.clock.now += seconds
        self.settle()

    def finish(self) -> GenerationOutcome:
        """The round's outcome (it must be done)."""
        assert self.round.rules.done
        self.round.finish()
        outcome: GenerationOutcome = self.round.rules.outcome()
        return outcome

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the round's metrics (0 if never set)."""
        return self.metrics.get_sample_value(name, labels) or 0.0

    def waiting_in_queue(self) -> int:
        """Task copies published and not yet taken."""
        return self.broker.queue_depth(QUEUE)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Build a started harness (first tasks published, nobody consuming yet)."""
    made: list[Harness] = []

    def make(*evaluators: str, **kwargs: Any) -> Harness:
        h = Harness(tmp_path, list(evaluators), **kwargs)
        h.round.begin()
        made.append(h)
        return h

    yield make
    for h in made:
        h.round.finish()


def test_window_bounds_tasks_in_flight_and_outcomes_equal_local_evaluation(
    harness: Callable[..., Harness],
) -> None:
    """With 2 evaluators the window is 3 tasks: only 3 of the 8 go out until answers come;
    the merged outcomes equal the in-process evaluation, bit for bit."""
    h = harness("ev0", "ev1")
    h.round.pump()
    assert h.waiting_in_queue() == 3
    h.open_queue()
    h.settle()
    assert len(h.seen) == 8
    assert h.seen[0].task_id == "t:0:r0:t0"
    assert h.finish().outcomes == h.reference.outcomes
    assert h.progress[-1] == (8, 8, 1)
    assert h.waiting[-1] is None


def test_overdue_task_goes_out_again_with_back_off_then_the_training_fails(
    harness: Callable[..., Harness],
) -> None:
    """A task nobody answers is re-published at its deadline, the next deadline twice as
    far; past max_task_attempts the round fails with TaskAbandonedError."""
    h = harness("ev0", max_task_attempts=2)
    h.policy = lambda task: None if task.task_id.endswith(":t0") else honest(task, "ev0")
    h.open_queue()
    h.settle()
    assert [t.attempt for t in h.seen if t.task_id.endswith(":t0")] == [0]
    h.later(TIMEOUT_S - 0.01)
    assert h.metric("ezspark_evolver_tasks_redispatched_total") == 0
    h.later(0.01)
    assert [t.attempt for t in h.seen if t.task_id.endswith(":t0")] == [0, 1]
    h.later(2 * TIMEOUT_S - 0.01)  # attempt 1's deadline is twice as far
    assert h.metric("ezspark_evolver_tasks_redispatched_total") == 1
    h.later(0.01)
    assert [t.attempt for t in h.seen if t.task_id.endswith(":t0")] == [0, 1, 2]
    with pytest.raises(TaskAbandonedError, match="no result in 3 attempts"):
        h.later(4 * TIMEOUT_S)


def test_a_late_answer_to_a_re_dispatched_task_completes_the_round(
    harness: Callable[..., Harness],
) -> None:
    """The first copy is lost, the re-dispatched one is answered: the round ends with the
    in-process outcomes; a late answer to the lost copy is a duplicate."""
    h = harness("ev0")
    lost: list[EvaluationTask] = []

    def first_copy_lost(task: EvaluationTask) -> EvaluationResult | None:
        if task.task_id.endswith(":t1") and task.attempt == 0:
            lost.append(task)
            return None
        return honest(task, "ev0")

    h.policy = first_copy_lost
    h.open_queue()
    h.settle()
    assert not h.round.rules.done
    h.later(TIMEOUT_S)
    assert h.round.rules.done
    h.round.deliver(honest(lost[0], "ev0"))
    h.round.pump()
    assert h.metric("ezspark_evolver_results_ignored_total", reason="duplicate") == 1
    assert h.finish().outcomes == h.reference.outcomes


def test_declined_copy_goes_out_again_after_a_jittered_back_off(
    harness: Callable[..., Harness],
) -> None:
    """A copy given back unevaluated is not re-published at once (which could ping-pong
    between two evaluators) but after 25-75 ms, then answered elsewhere."""
    h = harness("ev0", "ev1")
    h.policy = lambda task: (
        declined(task, "ev1")
        if task.task_id.endswith(":t0") and task.attempt == 0
        else honest(task, "ev0")
    )
    h.open_queue()
    h.settle()
    assert [t.attempt for t in h.seen if t.task_id.endswith(":t0")] == [0]
    h.later(0.024)
    assert [t.attempt for t in h.seen if t.task_id.endswith(":t0")] == [0]
    h.later(0.076 - 0.024)
    assert [t.attempt for t in h.seen if t.task_id.endswith(":t0")] == [0, 1]
    assert h.metric("ezspark_evolver_results_ignored_total", reason="declined") == 1
    assert h.finish().outcomes == h.reference.outcomes


def test_idle_evaluators_get_a_speculative_copy_of_the_last_open_task(
    harness: Callable[..., Harness],
) -> None:
    """Every task answered but one, evaluators idle: after the typical task time the last
    task goes out again (attempt 1); the first answer completes the round."""
    h = harness(*(f"ev{i}" for i in range(8)), sizes=[12, 12])
    h.policy = lambda task: (
        None if task.task_id.endswith(":t0") and task.attempt == 0 else honest(task, "ev1")
    )
    h.open_queue()
    h.settle()
    assert len(h.seen) == 4
    h.later(0.05)  # too early: younger than the typical task time (0.1 s)
    assert len(h.seen) == 4
    h.later(1.0)  # well before the deadline
    assert (h.seen[4].task_id, h.seen[4].attempt) == (h.seen[0].task_id, 1)
    assert h.metric("ezspark_evolver_tasks_speculative_total") == 1
    assert h.metric("ezspark_evolver_tasks_redispatched_total") == 0
    assert h.finish().outcomes == h.reference.outcomes


def test_single_evaluator_skips_rechecks_instead_of_looping(
    harness: Callable[..., Harness],
) -> None:
    """safeness 1 with one live evaluator: no re-check is published, every sampled genome
    is counted as skipped (once per task it is in: 24 genomes × 2 game groups)."""
    h = harness("ev0", config=config_with(CONFIG, safeness=1.0))
    h.open_queue()
    h.settle()
    outcome = h.finish()
    assert (outcome.skipped_checks, outcome.checks) == (24 * 2, 0)
    assert {kind_of(t) for t in h.seen} == {"t"}
    assert len(h.seen) == 8


def test_a_lying_re_check_loses_the_tie_break_and_is_quarantined(
    harness: Callable[..., Harness],
) -> None:
    """Tasks by ev0, re-checks by a liar, tie-breaks by ev2: every sampled genome
    mismatches once, the third evaluator sides with ev0, the liar is quarantined and its
    later answers are ignored; the outcomes are the true ones."""
    h = harness("ev0", "liar", "ev2", config=config_with(CONFIG, safeness=0.25))
    answers = {"t": "ev0", "c": "liar", "x": "ev2"}

    def play(task: EvaluationTask) -> EvaluationResult:
        who = answers[kind_of(task)]
        assert who not in task.avoid_evaluators
        result = honest(task, who)
        return lied(result) if who == "liar" else result

    h.policy = play
    h.open_queue()
    h.settle()
    outcome = h.finish()
    assert h.quarantined == ["liar"]
    assert outcome.mismatches == outcome.checks > 0
    # Counted in genomes (each once, whatever number of its game groups were compared).
    assert outcome.checks == len(safeness_sample(h.round.rules.config, 0, list(range(24))))
    assert outcome.outcomes == h.reference.outcomes
    assert {kind_of(t) for t in h.seen} == {"t", "c", "x"}
    assert h.metric("ezspark_evolver_quarantined_evaluators_total") == 0  # the trainer's
    h.round.deliver(honest(h.seen[0], "liar"))
    h.round.pump()
    assert h.metric("ezspark_evolver_results_ignored_total", reason="duplicate") == 1


def blamed_on_nondeterminism(h: Harness, start: str) -> str:
    """The round's waiting reason: it starts with ``start`` and names the usual cause."""
    reason = h.waiting[-1]
    assert reason is not None
    assert reason.startswith(start), reason
    assert "not deterministic" in reason
    return reason


def test_a_tie_break_with_no_third_evaluator_waits_and_names_the_usual_cause(
    harness: Callable[..., Harness],
) -> None:
    """Two evaluators disagree and none is left for the tie-break: the training waits and
    says why, naming a non-deterministic environment; a third evaluator then settles it."""
    h = harness("ev0", "liar", config=config_with(CONFIG, safeness=0.25))
    third: list[str] = []  # ev2, once it has announced

    def play(task: EvaluationTask) -> EvaluationResult | None:
        if kind_of(task) == "x":
            return honest(task, third[0]) if third else None  # nobody else is there yet
        result = honest(task, "ev0" if kind_of(task) == "t" else "liar")
        return lied(result) if kind_of(task) == "c" else result

    h.policy = play
    h.open_queue()
    h.settle()
    h.later(2 * TIMEOUT_S)
    reason = blamed_on_nondeterminism(h, "a safeness tie-break needs a third evaluator of")
    assert "ezspark validate" in reason
    h.announce("ev2")
    third.append("ev2")
    for _ in range(4):
        h.later(8 * TIMEOUT_S)
    assert h.quarantined == ["liar"]
    assert h.finish().outcomes == h.reference.outcomes


def test_a_quarantined_evaluator_s_task_answers_are_redone(
    harness: Callable[..., Harness],
) -> None:
    """The liar answered a task honestly before it lied on a re-check: once quarantined,
    that task is published again and answered by someone else."""
    h = harness("ev0", "liar", "ev2", config=config_with(CONFIG, safeness=0.25))

    def play(task: EvaluationTask) -> EvaluationResult:
        if kind_of(task) == "x":
            return honest(task, "ev2")
        if kind_of(task) == "c":
            return (
                lied(honest(task, "liar"))
                if "liar" not in task.avoid_evaluators
                else (honest(task, "ev2"))
            )
        liar_first = task.task_id.endswith(":t1") and task.attempt == 0
        return honest(task, "liar" if liar_first else "ev0")

    h.policy = play
    h.open_queue()
    h.settle()
    outcome = h.finish()
    assert h.quarantined == ["liar"]
    assert [t.attempt for t in h.seen if t.task_id.endswith(":t1")] == [0, 1]
    assert outcome.outcomes == h.reference.outcomes


def test_with_nobody_serving_the_round_waits_instead_of_failing(
    harness: Callable[..., Harness],
) -> None:
    """No live evaluator: deadlines pass without counting towards abandonment, the user is
    told why the training waits, and the round completes once an evaluator announces."""
    h = harness(max_task_attempts=1)
    h.settle()
    for _ in range(5):
        h.later(8 * TIMEOUT_S)
    assert h.waiting[-1] == "no evaluator serves CartPole-v1"
    assert h.metric("ezspark_evolver_tasks_redispatched_total") == 0
    h.announce("ev0")
    h.open_queue()
    h.later(8 * TIMEOUT_S)
    assert h.waiting[-1] is None
    assert h.finish().outcomes == h.reference.outcomes


def test_with_every_evaluator_quarantined_the_round_waits_and_says_why(
    harness: Callable[..., Harness],
) -> None:
    """The only live evaluator is quarantined for the training: the round waits without
    counting towards abandonment, the user is told that quarantine (and its usual cause)
    stops the training, and the round completes once an evaluator that is not quarantined
    announces."""
    h = harness("ev0", quarantine={"ev0"}, max_task_attempts=1)
    joined: list[str] = []
    h.policy = lambda task: honest(task, "ev1") if joined else None  # ev0 declines
    h.open_queue()
    h.settle()
    for _ in range(5):
        h.later(8 * TIMEOUT_S)
    reason = blamed_on_nondeterminism(h, "every evaluator of CartPole-v1 that may serve")
    assert "quarantined" in reason
    assert not h.round.rules.done
    assert all(t.avoid_evaluators == ["ev0"] for t in h.seen)
    h.announce("ev1")
    joined.append("ev1")
    h.later(8 * TIMEOUT_S)
    assert h.waiting[-1] is None
    assert h.finish().outcomes == h.reference.outcomes


def test_stale_and_unknown_answers_are_ignored(harness: Callable[..., Harness]) -> None:
    """An answer for a task id this round never issued is stale and changes nothing."""
    h = harness("ev0")
    h.open_queue()
    h.policy = lambda task: None
    h.settle()
    stale = honest(h.seen[0], "ev0").model_copy(update={"task_id": "t:0:old:t0"})
    h.round.deliver(stale)
    h.round.pump()
    assert h.metric("ezspark_evolver_results_ignored_total", reason="stale") == 1
    assert h.progress[-1] == (0, 8, 0)


def test_outcomes_do_not_depend_on_who_answers_or_in_what_order(
    harness: Callable[..., Harness],
) -> None:
    """Answers from many evaluators, in whatever order the broker delivers them, merge to
    the in-process outcomes (same seed, same population, whatever the evaluators)."""
    h = harness(*(f"ev{i}" for i in range(5)), sizes=[5, 3, 9, 7])
    h.policy = lambda task: honest(task, f"ev{int(task.task_id[-1]) % 5}")
    h.open_queue()
    h.settle()
    outcome = h.finish()
    assert outcome.outcomes == h.reference.outcomes
    assert all(isinstance(o, Outcome) for o in outcome.outcomes.values())
    assert np.isfinite([o.mean for o in outcome.outcomes.values()]).all()


def test_an_answer_with_a_misshapen_behaviour_is_invalid(harness: Callable[..., Harness]) -> None:
    """A result whose behaviour is not 2 · input_size values per game is ignored as invalid
    (it could not be compared with the others' behaviours)."""
    h = harness("ev0")
    h.open_queue()
    h.policy = lambda task: None
    h.settle()
    good = honest(h.seen[0], "ev0")
    table = good.outcomes
    wrong = np.zeros((len(table), table.returns.shape[1], 3))
    bad = good.model_copy(update={"outcomes": dataclasses.replace(table, behaviour=wrong)})
    h.round.deliver(bad)
    h.round.pump()
    assert h.metric("ezspark_evolver_results_ignored_total", reason="invalid") == 1
    assert h.progress[-1] == (0, 8, 0)
