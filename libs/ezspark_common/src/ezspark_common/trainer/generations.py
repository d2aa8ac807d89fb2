"""The generation loop: evaluate, ``advance``, keep, tell; the same for every trainer.

``ezspark train`` and the evolver run this loop.  They differ in their :class:`Evaluator`
(this process, a process pool, or the evaluators over the broker, all giving the same
outcomes bit for bit) and in their :class:`GenerationSink` (a run directory, or the
evolver's store and events).  A generation is kept before it is told: a crash never
leaves a report without its checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from ezspark_common.config import TrainingConfig
from ezspark_common.evaluation.batch import Outcome
from ezspark_common.neat.population import Population
from ezspark_common.trainer.training import GenerationReport, TrainingState, advance, report_for


@dataclass(frozen=True)
class GenerationOutcome:
    """A generation's outcome per genome, with the safeness re-check counts and (from the
    distributed evaluator) the measured cost of a genome on one game group."""

    outcomes: dict[int, Outcome]
    checks: int = 0
    mismatches: int = 0
    skipped_checks: int = 0
    seconds_per_genome: float | None = None


class Evaluator(Protocol):
    """Evaluates a population: every genome on the generation's games."""

    def evaluate(self, population: Population, config: TrainingConfig) -> GenerationOutcome:
        """Every genome's outcome over ``config.max_number_of_games`` games."""
        ...


class GenerationSink(Protocol):
    """Where a training's generations go, and what may end it early."""

    def stop_reason(self) -> str | None:
        """Why the training must finish now (e.g. ``"stopped"``), or None to go on."""
        ...

    def keep(
        self,
        before: TrainingState,
        after: TrainingState,
        report: GenerationReport | None,
        returns: tuple[float, ...],
    ) -> None:
        """Persist ``after``; ``report`` is None when no generation led to it (a stop)."""
        ...

    def tell(self, before: TrainingState, after: TrainingState, report: GenerationReport) -> None:
        """Report a kept generation."""
        ...


def run_generations(
    state: TrainingState,
    evaluator: Evaluator,
    sink: GenerationSink,
    *,
    stop_at: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TrainingState:
    """Run generations until the training finishes (or reaches generation ``stop_at``)."""
    while not state.finished and (stop_at is None or state.generation < stop_at):
        reason = sink.stop_reason()
        if reason is not None:
            stopped = replace(state, finished=reason)
            sink.keep(state, stopped, None, ())
            return stopped
        state = run_generation(state, evaluator, sink, clock=clock)
    return state


def run_generation(
    state: TrainingState,
    evaluator: Evaluator,
    sink: GenerationSink,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> TrainingState:
    """Evaluate one generation, breed the next; keep it, then tell it."""
    started = clock()
    result = evaluator.evaluate(state.population, state.config)
    seconds = clock() - started
    report = report_for(state, result.outcomes, seconds, result.checks, result.mismatches)
    after = advance(state, result.outcomes, report)
    if not after.finished:
        reason = sink.stop_reason()
        after = after if reason is None else replace(after, finished=reason)
    sink.keep(state, after, report, result.outcomes[report.best_genome_key].returns)
    sink.tell(state, after, report)
    return after


class NoSink:
    """Keeps and tells nothing, never stops early: a run held only in memory."""

    def stop_reason(self) -> str | None:
        """Never."""
        return None

    def keep(
        self,
        before: TrainingState,
        after: TrainingState,
        report: GenerationReport | None,
        returns: tuple[float, ...],
    ) -> None:
        """Nothing to persist."""

    def tell(self, before: TrainingState, after: TrainingState, report: GenerationReport) -> None:
        """No one to tell."""
