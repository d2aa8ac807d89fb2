"""Training use cases: create, stop, read.  Every read is scoped to the owner."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import structlog

from ezspark_common.config import TrainingConfig
from ezspark_common.trainer.training import GenerationReport as Report
from ezspark_common.trainer.training import TrainingState, phase_of, state_to_dict
from ezspark_common.wire.messages import StopRequested, TrainingRequested, WireGenome
from ezspark_gateway.core.admission import Admission
from ezspark_gateway.core.errors import ConflictError, NotFoundError, UnavailableError
from ezspark_gateway.core.health import RECENT
from ezspark_gateway.core.ports import CommandPublisher
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.models import GenerationRow, Training, User

QUEUED, RUNNING, STOPPING = "queued", "running", "stopping"
FINISHED, FAILED, STOPPED = "finished", "failed", "stopped"
ACTIVE = frozenset({QUEUED, RUNNING, STOPPING})
TERMINAL = frozenset({FINISHED, FAILED, STOPPED})
MAX_HISTORY_PAGE = 10_000
# Ids are uuid4 strings we minted; anything else cannot exist, and must not reach the
# database (PostgreSQL refuses NUL bytes with an error instead of "no rows").
_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

log = structlog.get_logger(__name__)


def create_training(
    repo: Repository,
    publisher: CommandPublisher,
    owner: User,
    config: TrainingConfig,
    now: float,
    admission: Admission,
    handoff: TrainingState | None = None,
    handoff_id: str | None = None,
) -> Training:
    """Admit, store a queued training, then ask the evolvers to run it.

    Over-quota configs and unknown environments (ConfigError) and users at their limit of
    active trainings (QuotaExceededError) are refused before anything is stored or sent.
    The row is committed before publishing so an early event always finds it; if the
    broker refuses, the row is marked failed and UnavailableError tells the client to retry.
    ``handoff``: a checked local run to continue (its generations so far are stored too),
    sent as the hand-over ``handoff_id``.
    """
    admission.check_config(config)
    data: dict[str, Any] = config.model_dump(mode="json")
    done = handoff.history if handoff else ()
    training = _new_training(owner, data, now, done)
    training.handoff_id = handoff_id
    if handoff is not None and handoff.best is not None:
        # The local run's champion: the network is shown and downloadable at once.
        training.best_genome = WireGenome(**handoff.best.genome.to_wire()).model_dump(mode="json")
    with admission.admit(repo, owner, ACTIVE):
        repo.add_training(training)
        for report in done:
            repo.add_generation(_row(training.id, report, now, phase_of(config, report.generation)))
        repo.commit()
    structlog.contextvars.bind_contextvars(training_id=training.id)
    msg = TrainingRequested(
        training_id=training.id,
        owner=owner.username,
        config=data,
        requested_at=now,
        checkpoint=state_to_dict(handoff) if handoff else None,
    )
    _request(repo, publisher, msg, now)
    log.info("training_requested", owner=owner.username)
    return training


def _request(
    repo: Repository, publisher: CommandPublisher, msg: TrainingRequested, now: float
) -> None:
    """Send the stored training to the evolvers; if the broker refuses, mark it failed."""
    try:
        publisher.publish(msg)
    except Exception as exc:
        log.error("publish_failed", command="training_requested", error=str(exc))
        repo.transition(
            msg.training_id,
            ACTIVE,
            status=FAILED,
            updated_at=now,
            error="could not queue the training: message broker unavailable",
        )
        repo.commit()
        raise UnavailableError("message broker unavailable; try again") from exc


def _new_training(
    owner: User, config: dict[str, Any], now: float, done: Sequence[Report]
) -> Training:
    """A queued training row; ``done``: the generations a handed-over run already had."""
    return Training(
        id=str(uuid.uuid4()),
        owner_id=owner.id,
        status=QUEUED,
        config=config,
        created_at=now,
        updated_at=now,
        generations=len(done),
        best_fitness=max((r.best_fitness for r in done), default=None),
    )


def _row(training_id: str, report: Report, now: float, phase: str) -> GenerationRow:
    """A generation a local run had before it was handed over, as a stored report (its
    shape fields are None when the local run's version did not record them)."""
    return GenerationRow(
        training_id=training_id,
        generation=report.generation,
        best_fitness=report.best_fitness,
        mean_fitness=report.mean_fitness,
        species=report.species,
        population=report.population,
        evaluations_per_s=report.evaluations_per_s,
        best_genome_key=report.best_genome_key,
        received_at=now,
        species_sizes=list(report.species_sizes) or None,
        mean_nodes=report.mean_nodes,
        mean_connections=report.mean_connections,
        best_nodes=report.best_nodes,
        best_connections=report.best_connections,
        phase=phase,
        errors=report.errors,
        first_error=report.first_error,
        safeness_checks=report.safeness_checks,
        safeness_mismatches=report.safeness_mismatches,
    )


def is_training_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id this gateway mints."""
    return _ID_RE.fullmatch(value) is not None


def get_training(repo: Repository, owner: User, training_id: str) -> Training:
    """The owner's training; NotFoundError for unknown ids and other users' trainings alike."""
    training = repo.training(training_id, owner.id) if is_training_id(training_id) else None
    if training is None:
        raise NotFoundError("no such training")
    return training


def list_trainings(
    repo: Repository, owner: User, limit: int, offset: int
) -> tuple[Sequence[Training], int]:
    """A page of the owner's trainings (newest first) and their total count."""
    return repo.trainings_page(owner.id, limit, offset)


def stop_training(
    repo: Repository, publisher: CommandPublisher, owner: User, training_id: str, now: float
) -> Training:
    """Mark an active training ``stopping`` and tell the evolvers.

    Asking again while ``stopping`` re-sends the command (harmless, helps after a broker
    hiccup); a training that already ended is a ConflictError.
    """
    training = get_training(repo, owner, training_id)
    structlog.contextvars.bind_contextvars(training_id=training.id)
    if training.status in TERMINAL:
        raise ConflictError(f"training already {training.status}")
    repo.transition(training.id, {QUEUED, RUNNING}, status=STOPPING, updated_at=now)
    repo.commit()
    try:
        publisher.publish(StopRequested(training_id=training.id))
    except Exception as exc:
        log.error("publish_failed", command="stop_requested", error=str(exc))
        raise UnavailableError("message broker unavailable; try again") from exc
    log.info("stop_requested")
    repo.session.refresh(training)
    return training


def history(
    repo: Repository, owner: User, training_id: str, since: int, limit: int
) -> Sequence[GenerationRow]:
    """Generation reports from ``since`` on, in order."""
    get_training(repo, owner, training_id)
    return repo.generations(training_id, since, min(limit, MAX_HISTORY_PAGE))


def latest_report(repo: Repository, training: Training) -> GenerationRow | None:
    """The most recent generation report of a training."""
    return repo.latest_generation(training.id)


def recent_reports(repo: Repository, training: Training) -> Sequence[GenerationRow]:
    """The newest ``health.RECENT`` reports of a training, oldest first."""
    since = max(0, training.generations - RECENT)
    rows = repo.generations(training.id, since, RECENT)
    return rows if rows else [r for r in [repo.latest_generation(training.id)] if r is not None]


def best_genome(repo: Repository, owner: User, training_id: str) -> dict[str, Any]:
    """The stored champion; NotFoundError until an event delivered one."""
    training = get_training(repo, owner, training_id)
    if training.best_genome is None:
        raise NotFoundError("no best genome yet")
    return training.best_genome
