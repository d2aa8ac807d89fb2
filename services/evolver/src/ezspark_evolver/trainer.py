"""One training's loop on its own thread: evaluate, ``advance``, checkpoint, report.

The loop is the embedded trainer's (``runner.run_embedded``) with the evaluation swapped:
the first ``alone_training_iterations`` generations run in this process through
``LocalEvaluator(1)``, later ones go to the evaluators through a ``Round``.  Both give the
same outcomes, so the run is the embedded run, generation by generation.

The checkpoint is written before the generation's report is published; after a restart
the last report is published again (the gateway ignores duplicates), so none is lost.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import replace

import structlog

from ezspark_common.broker import BrokerError
from ezspark_common.local import GenerationOutcome, LocalEvaluator
from ezspark_common.messages import (
    GenerationReport,
    TrainingFailed,
    TrainingFinished,
    WireGenome,
)
from ezspark_common.training import GenerationReport as Report
from ezspark_common.training import TrainingState, advance, report_for
from ezspark_evolver.context import Context, Event, Interrupted
from ezspark_evolver.dispatch import Round

log = structlog.get_logger("ezspark_evolver")

_REASONS = ("generations", "fitness_threshold", "stopped")
_MAX_RETRY_S = 30.0
_MAX_ERROR_CHARS = 2000


class TrainingRunner:
    """Runs (or resumes) one training until it finishes, fails or the service stops."""

    def __init__(self, ctx: Context, training_id: str) -> None:
        self.ctx = ctx
        self.training_id = training_id
        self._quarantine = ctx.store.quarantined(training_id)

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
        store, tid = self.ctx.store, self.training_id
        state = store.load(tid)
        log.info("training_running", generation=state.generation, finished=state.finished,
                 quarantined=sorted(self._quarantine) or None)
        if state.history:
            self._report(state.history[-1])  # a crash may have hidden it; duplicates are fine
        while not state.finished:
            if store.stop_requested(tid):
                state = replace(state, finished="stopped")
                store.save(tid, state)
                break
            if self.ctx.stopping.is_set():
                raise Interrupted
            state = self._generation(state)
        self._finish(state)

    def _generation(self, state: TrainingState) -> TrainingState:
        """Evaluate one generation and move to the next; checkpoint first, then report."""
        structlog.contextvars.bind_contextvars(generation=state.generation)
        started = time.perf_counter()
        result = self._evaluate(state)
        seconds = time.perf_counter() - started
        report = report_for(state, result.outcomes, seconds, result.checks, result.mismatches)
        after = advance(state, result.outcomes, report)
        if not after.finished and self.ctx.store.stop_requested(self.training_id):
            after = replace(after, finished="stopped")
        self.ctx.store.save_generation(self.training_id, state, after, report,
                                       result.outcomes[report.best_genome_key].returns)
        self._observe(report)
        self._report(report)
        log.info("generation_done", best_fitness=report.best_fitness,
                 mean_fitness=report.mean_fitness, species=report.species,
                 population=report.population, seconds=round(seconds, 3),
                 safeness_checks=report.safeness_checks,
                 safeness_mismatches=report.safeness_mismatches)
        structlog.contextvars.unbind_contextvars("generation")
        return after

    def _evaluate(self, state: TrainingState) -> GenerationOutcome:
        """In this process for the first generations, then over the evaluators."""
        config = state.config
        if state.generation < config.alone_training_iterations:
            with self.ctx.local_lock:
                local = LocalEvaluator(1, self.ctx.settings.env_module_list)
                return local.evaluate(state.population, config)
        for attempt in itertools.count():
            round_ = Round(self.ctx, self.training_id, state, self._quarantine,
                           self._quarantined)
            self.ctx.register(self.training_id, round_)
            try:
                return round_.run()
            except BrokerError as exc:
                if self.ctx.stopping.is_set():
                    raise Interrupted from exc
                delay = min(2.0**attempt, _MAX_RETRY_S)
                log.warning("generation_retry", error=str(exc), retry_in_s=delay)
                self.ctx.stopping.wait(delay)
            finally:
                self.ctx.unregister(self.training_id, round_)
        raise AssertionError("unreachable")

    def _quarantined(self, evaluator: str) -> None:
        """Persist a new quarantine so it outlives a restart."""
        self.ctx.store.save_quarantine(self.training_id, self._quarantine)
        self.ctx.metrics.quarantined.inc()
        log.warning("evaluator_quarantined", evaluator_id=evaluator,
                    quarantined=sorted(self._quarantine))

    def _observe(self, report: Report) -> None:
        m, tid = self.ctx.metrics, self.training_id
        m.generations.labels(tid).inc()
        m.generation_seconds.observe(report.seconds)
        m.population.labels(tid).set(report.population)
        m.species.labels(tid).set(report.species)
        m.best_fitness.labels(tid).set(report.best_fitness)

    def _report(self, report: Report) -> None:
        """Tell the gateway about a generation; a lost report is not worth a failure."""
        event = GenerationReport(
            training_id=self.training_id, generation=report.generation,
            best_fitness=report.best_fitness, mean_fitness=report.mean_fitness,
            species=report.species, population=report.population,
            evaluations_per_s=report.evaluations_per_s, best_genome_key=report.best_genome_key,
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
            training_id=self.training_id, generations=len(state.history),
            best_fitness=best.fitness if best else 0.0,
            reason=reason if reason in _REASONS else "generations",
            best_genome=WireGenome(**best.genome.to_wire()) if best else None,
        )
        self._final(event)
        log.info("training_finished", reason=event.reason, generations=event.generations,
                 best_fitness=event.best_fitness)

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
