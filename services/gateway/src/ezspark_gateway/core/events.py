"""Apply evolver events to storage.  Every event is idempotent: redelivery is harmless."""

from __future__ import annotations

import time
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from ezspark_common.wire.messages import (
    GenerationFinished,
    GenerationProgressed,
    SavedGenome,
    TrainingFailed,
    TrainingFinished,
    TrainingWaiting,
)
from ezspark_gateway.core.ports import Clock, Event
from ezspark_gateway.core.trainings import (
    ACTIVE,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    STOPPED,
    is_training_id,
)
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.models import GenerationRow, SavedGenomeRow

APPLIED, DUPLICATE, UNKNOWN = "applied", "duplicate", "unknown"
# Reports kept as they came, per training (EZSPARK_HISTORY_RECENT in production).
HISTORY_RECENT = 1000
# Older history is thinned every this many generations, not at every report.
_THIN_EVERY = 16
MAX_ERROR_CHARS = 4000
MAX_REASON_CHARS = 500

log = structlog.get_logger(__name__)


def history_stride(generation: int, recent: int) -> int:
    """The power of two that keeps at most ``recent`` reports older than the newest
    ``recent``: powers of two nest, so thinning never brings back a deleted report."""
    older = generation - recent
    stride = 1
    while older > stride * recent:
        stride *= 2
    return stride


def thin_history(repo: Repository, training_id: str, generation: int, recent: int) -> None:
    """Keep the newest ``recent`` reports and about ``recent`` evenly spread older ones,
    so a long run's history stops growing (at most about 2 x ``recent`` rows)."""
    stride = history_stride(generation, recent)
    if stride > 1 and generation % _THIN_EVERY == 0:
        repo.thin_generations(training_id, generation - recent, stride)


def apply_event(
    repo: Repository, event: Event, now: float, history_recent: int = HISTORY_RECENT
) -> str:
    """Apply one event and commit; return "applied", "duplicate" or "unknown"."""
    if not is_training_id(event.training_id) or repo.training(event.training_id) is None:
        # Not ours (another gateway's database, or deleted): nothing to update.
        return UNKNOWN
    if isinstance(event, GenerationFinished):
        outcome = _apply_report(repo, event, now)
        if outcome == APPLIED:
            thin_history(repo, event.training_id, event.generation, history_recent)
    elif isinstance(event, TrainingFinished):
        outcome = _apply_finished(repo, event, now)
    elif isinstance(event, GenerationProgressed):
        outcome = _apply_progress(repo, event, now)
    elif isinstance(event, TrainingWaiting):
        outcome = _apply_waiting(repo, event, now)
    else:
        outcome = _apply_failed(repo, event, now)
    repo.commit()
    return outcome


def _generation_row(event: GenerationFinished, now: float) -> GenerationRow:
    return GenerationRow(
        training_id=event.training_id,
        generation=event.generation,
        best_fitness=event.best_fitness,
        mean_fitness=event.mean_fitness,
        species=event.species,
        population=event.population,
        evaluations_per_s=event.evaluations_per_s,
        best_genome_key=event.best_genome_key,
        received_at=now,
        species_sizes=event.species_sizes,
        mean_nodes=event.mean_nodes,
        mean_connections=event.mean_connections,
        best_nodes=event.best_nodes,
        best_connections=event.best_connections,
        phase=event.phase,
        errors=event.errors,
        first_error=event.first_error,
        safeness_checks=event.safeness_checks,
        safeness_mismatches=event.safeness_mismatches,
    )


def _apply_report(repo: Repository, event: GenerationFinished, now: float) -> str:
    if not repo.add_generation(_generation_row(event, now)):
        return DUPLICATE
    # Only queued → running: a late report must not revive a stopping or ended training.
    repo.transition(event.training_id, {QUEUED}, status=RUNNING, updated_at=now)
    repo.raise_progress(event.training_id, event.generation, event.best_fitness, now)
    # A generation went by, so the training is not waiting (any more).
    repo.set_waiting(event.training_id, ACTIVE, None, now)
    # The next generation's progress starts afresh (its first progress event follows).
    health: dict[str, Any] = {"last_event_at": now, "progress_done": None, "progress_total": None}
    health["progress_evaluators"] = None
    if event.phase is not None:
        health["phase"] = event.phase
    repo.transition(event.training_id, ACTIVE, **health)
    champion = event.champion or event.best_so_far
    if champion is not None:
        genome = champion.genome.model_dump(mode="json")
        repo.set_champion(event.training_id, ACTIVE, genome, champion.fitness)
    if event.generation_best is not None or event.best_so_far is not None:
        # Last: only the writer that inserted the report gets here (see add_generation).
        repo.add_saved_genomes(
            SavedGenomeRow(
                training_id=event.training_id,
                generation=event.generation,
                generation_best=_dump(event.generation_best),
                best_so_far=_dump(event.best_so_far),
                received_at=now,
            )
        )
    return APPLIED


def _dump(saved: SavedGenome | None) -> dict[str, Any] | None:
    return None if saved is None else saved.model_dump(mode="json")


def _apply_progress(repo: Repository, event: GenerationProgressed, now: float) -> str:
    """How far the running generation is; ignored once a later generation was reported."""
    values: dict[str, Any] = {
        "last_event_at": now,
        "progress_done": event.done,
        "progress_total": event.total,
        "progress_evaluators": event.evaluators,
    }
    if event.phase is not None:
        values["phase"] = event.phase
    if not repo.set_progress(event.training_id, ACTIVE, event.generation, **values):
        return DUPLICATE
    # Tasks are being answered: the training runs, whether or not a report came yet.
    repo.transition(event.training_id, {QUEUED}, status=RUNNING, updated_at=now)
    return APPLIED


def _apply_waiting(repo: Repository, event: TrainingWaiting, now: float) -> str:
    reason = None
    if event.waiting:
        reason = (
            event.reason.replace("\x00", "").strip()[:MAX_REASON_CHARS]
            or "waiting for an evaluator"
        )
    changed = repo.set_waiting(event.training_id, ACTIVE, reason, now)
    if changed:
        repo.transition(event.training_id, ACTIVE, last_event_at=now)
    return APPLIED if changed else DUPLICATE


def _apply_finished(repo: Repository, event: TrainingFinished, now: float) -> str:
    values: dict[str, Any] = {
        "status": STOPPED if event.reason == "stopped" else FINISHED,
        "finish_reason": event.reason,
        "generations": event.generations,
        "best_fitness": event.best_fitness,
        "waiting_reason": None,
        "updated_at": now,
        "finished_at": now,
        "last_event_at": now,
    }
    if event.best_genome is not None:
        values["best_genome"] = event.best_genome.model_dump(mode="json")
    return APPLIED if repo.transition(event.training_id, ACTIVE, **values) else DUPLICATE


def _apply_failed(repo: Repository, event: TrainingFailed, now: float) -> str:
    ok = repo.transition(
        event.training_id,
        ACTIVE,
        status=FAILED,
        error=event.error.replace("\x00", "")[:MAX_ERROR_CHARS],
        waiting_reason=None,
        updated_at=now,
        finished_at=now,
        last_event_at=now,
    )
    return APPLIED if ok else DUPLICATE


class EventApplier:
    """The production EventSink: one short transaction per event."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock = time.time,
        history_recent: int = HISTORY_RECENT,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._history_recent = history_recent

    def handle(self, event: Event) -> str:
        """Apply ``event`` in its own session; exceptions propagate (caller requeues)."""
        with structlog.contextvars.bound_contextvars(training_id=event.training_id):
            with self._sessions() as session:
                outcome = apply_event(
                    Repository(session), event, self._clock(), self._history_recent
                )
            # One report per generation would flood the logs at info level.
            emit = log.debug if isinstance(event, GenerationFinished) else log.info
            emit(
                "event_applied",
                kind=event.kind,
                outcome=outcome,
                generation=getattr(event, "generation", None),
            )
        return outcome
