"""One training on its own thread: ``generations.run_generations`` over the evaluators.

The loop is the embedded trainer's; the evaluator is ``dispatch.DistributedEvaluator``
(the evolver never builds an environment, so every generation, the alone ones included,
is evaluated over the broker) and the sink is this ``TrainingRunner``: the store keeps
each generation, then a report event tells the gateway.  A round gives the embedded
trainer's outcomes, so the run is the embedded run, generation by generation.

The checkpoint is written before the generation's report is published; after a restart
the last report is published again (the gateway ignores duplicates), so none is lost.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import uuid

import structlog

from ezspark_common.broker import BrokerError
from ezspark_common.config import TrainingConfig
from ezspark_common.neat.population import Population
from ezspark_common.trainer.generations import run_generations
from ezspark_common.trainer.handoff import saved_genome
from ezspark_common.trainer.training import (
    GenerationReport,
    TrainingState,
    genome_document,
    phase_of,
)
from ezspark_common.wire.messages import (
    GenerationFinished,
    GenerationProgressed,
    TrainingFailed,
    TrainingFinished,
    TrainingWaiting,
    WireGenome,
)
from ezspark_evolver.context import Context, Event, Interrupted
from ezspark_evolver.dispatch import DistributedEvaluator, Progress

log = structlog.get_logger("ezspark_evolver")

_REASONS = ("generations", "fitness_threshold", "stopped")
_MAX_RETRY_S = 30.0  # longest wait between two tries of the final event
_MAX_ERROR_CHARS = 2000
PROGRESS_EVERY_S = 1.0  # at most one GenerationProgressed per training per second


class TrainingRunner:
    """Runs (or resumes) one training until it finishes, fails or the service stops."""

    def __init__(self, ctx: Context, training_id: str) -> None:
        self.ctx = ctx
        self.training_id = training_id
        self._quarantine = ctx.store.quarantined(training_id)
        self.owner = ctx.store.owner(training_id)
        self._waiting: str | None = None
        # Progress events of the running generation: what was last told and when.
        self._told: tuple[int, int, int] | None = None
        self._told_at = -math.inf
        self.evaluator = DistributedEvaluator(
            ctx,
            training_id,
            self.owner,
            self._quarantine,
            self._quarantined,
            self._set_waiting,
            self._generation_started,
        )

    def run(self) -> None:
        """Thread target; never raises."""
        with structlog.contextvars.bound_contextvars(training_id=self.training_id):
            try:
                self._run()
            except Interrupted:
                log.info("training_paused", reason="service stopping")
            except Exception as exc:
                if self.ctx.stopping.is_set():
                    log.info("training_paused", reason="service stopping", error=str(exc))
                    return
                log.exception("training_failed")
                self._fail(f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._waiting is not None:  # a stop or failure ends the wait for the gauge
                self.ctx.metrics.waiting.dec()

    def _loop(self) -> None:
        state = self.ctx.store.load(self.training_id)
        log.info(
            "training_running",
            generation=state.generation,
            finished=state.finished,
            quarantined=sorted(self._quarantine) or None,
        )
        if state.history:
            # A crash may have hidden it; duplicates are fine.
            self._report(state, state.history[-1])
        state = run_generations(state, self.evaluator, self)
        self._finish(state)

    # ----- generations.GenerationSink ----------------------------------------------------

    def stop_reason(self) -> str | None:
        """``"stopped"`` once the user asked for a stop."""
        return "stopped" if self.ctx.store.stop_requested(self.training_id) else None

    def keep(
        self,
        before: TrainingState,
        after: TrainingState,
        report: GenerationReport | None,
        returns: tuple[float, ...],
    ) -> None:
        """Checkpoint ``after`` (with the generation's saved genomes, if one led to it)."""
        if report is None:
            self.ctx.store.save(self.training_id, after)
        else:
            self.ctx.store.save_generation(self.training_id, before, after, report, returns)

    def tell(self, before: TrainingState, after: TrainingState, report: GenerationReport) -> None:
        """Metrics, the report event and the log line of a kept generation."""
        self._observe(report)
        self._report(after, report)
        log.info(
            "generation_done",
            best_fitness=report.best_fitness,
            mean_fitness=report.mean_fitness,
            species=report.species,
            population=report.population,
            seconds=round(report.seconds, 3),
            safeness_checks=report.safeness_checks,
            safeness_mismatches=report.safeness_mismatches,
        )
        structlog.contextvars.unbind_contextvars("generation")

    # ----- the distributed evaluator's callbacks -----------------------------------------

    def _generation_started(self, population: Population, config: TrainingConfig) -> Progress:
        """Log lines name the generation; its progress is told afresh."""
        structlog.contextvars.bind_contextvars(generation=population.generation)
        self._told, self._told_at = None, -math.inf
        return functools.partial(self._progress, population.generation, config)

    def _set_waiting(self, reason: str | None) -> None:
        """Tell the gateway when the training starts or stops waiting for evaluators."""
        if reason == self._waiting:
            return
        if (reason is None) != (self._waiting is None):
            self.ctx.metrics.waiting.inc(1 if reason else -1)
        self._waiting = reason
        log.info("training_waiting" if reason else "training_resumed", reason=reason)
        event = TrainingWaiting(
            training_id=self.training_id, waiting=reason is not None, reason=reason or ""
        )
        try:
            self.ctx.publish_event(event, f"waiting:{self.training_id}:{uuid.uuid4().hex}")
        except BrokerError as exc:
            log.warning("waiting_not_published", error=str(exc))

    def _progress(
        self, gen: int, config: TrainingConfig, done: int, total: int, evaluators: int
    ) -> None:
        """Tell the gateway how far generation ``gen`` is: at once when it starts, then at
        most every ``PROGRESS_EVERY_S`` and only when something changed."""
        now, told = self.ctx.clock(), (done, total, evaluators)
        if told == self._told:
            return
        if self._told is not None and now - self._told_at < PROGRESS_EVERY_S:
            return
        self._told, self._told_at = told, now
        event = GenerationProgressed(
            training_id=self.training_id,
            generation=gen,
            done=done,
            total=total,
            evaluators=evaluators,
            phase=phase_of(config, gen),
        )
        try:
            self.ctx.publish_event(event, f"progress:{self.training_id}:{gen}:{uuid.uuid4().hex}")
        except BrokerError as exc:  # the next report or progress says it again
            log.warning("progress_not_published", error=str(exc))

    def _quarantined(self, evaluator: str) -> None:
        """Persist a new quarantine so it outlives a restart."""
        self.ctx.store.save_quarantine(self.training_id, self._quarantine)
        self.ctx.metrics.quarantined.inc()
        log.warning(
            "evaluator_quarantined", evaluator_id=evaluator, quarantined=sorted(self._quarantine)
        )

    def _observe(self, report: GenerationReport) -> None:
        m, tid = self.ctx.metrics, self.training_id
        m.generations.labels(tid).inc()
        m.generation_seconds.observe(report.seconds)
        m.population.labels(tid).set(report.population)
        m.species.labels(tid).set(report.species)
        m.best_fitness.labels(tid).set(report.best_fitness)

    def _report(self, after: TrainingState, report: GenerationReport) -> None:
        """Tell the gateway about a generation (``after``: the state it led to), with the
        genomes saved for it (for ``ezspark train --gateway``) and the champion if it
        improved; a lost report is not worth a failure."""
        config = after.config
        generation_best, best_so_far = self.ctx.store.saved_genomes(
            self.training_id, report.generation, config.saving, bool(after.finished)
        )
        best = after.best
        improved = best is not None and best.generation == report.generation
        event = GenerationFinished(
            training_id=self.training_id,
            generation=report.generation,
            best_fitness=report.best_fitness,
            mean_fitness=report.mean_fitness,
            species=report.species,
            population=report.population,
            evaluations_per_s=report.evaluations_per_s,
            best_genome_key=report.best_genome_key,
            generation_best=generation_best,
            best_so_far=best_so_far,
            species_sizes=list(report.species_sizes) or None,
            mean_nodes=report.mean_nodes,
            mean_connections=report.mean_connections,
            best_nodes=report.best_nodes,
            best_connections=report.best_connections,
            phase=phase_of(config, report.generation),
            champion=saved_genome(genome_document(best, config)) if best and improved else None,
            errors=report.errors,
            first_error=report.first_error,
            safeness_checks=report.safeness_checks,
            safeness_mismatches=report.safeness_mismatches,
        )
        try:
            self.ctx.publish_event(event, f"report:{self.training_id}:{report.generation}")
        except BrokerError as exc:
            if self.ctx.stopping.is_set():
                raise Interrupted from exc
            log.error("report_not_published", error=str(exc))

    def _finish(self, state: TrainingState) -> None:
        best, reason = state.best, state.finished
        event = TrainingFinished(
            training_id=self.training_id,
            generations=len(state.history),
            best_fitness=best.fitness if best else 0.0,
            reason=reason if reason in _REASONS else "generations",
            best_genome=WireGenome(**best.genome.to_wire()) if best else None,
        )
        self._final(event)
        log.info(
            "training_finished",
            reason=event.reason,
            generations=event.generations,
            best_fitness=event.best_fitness,
        )

    def _fail(self, error: str) -> None:
        event = TrainingFailed(training_id=self.training_id, error=error[:_MAX_ERROR_CHARS])
        with contextlib.suppress(Interrupted):
            self._final(event)

    def _final(self, event: Event) -> None:
        """Publish the final event (retrying while the service runs), then mark it sent."""
        for attempt in itertools.count():
            try:
                self.ctx.publish_event(event, f"{event.kind}:{self.training_id}")
                break
            except BrokerError as exc:
                if self.ctx.stopping.is_set():
                    raise Interrupted from exc
                log.warning("final_event_retry", error=str(exc))
                self.ctx.stopping.wait(min(2.0**attempt, _MAX_RETRY_S))
        self.ctx.store.mark_final(self.training_id, event.model_dump(mode="json"))
        self.ctx.metrics.forget(self.training_id)
