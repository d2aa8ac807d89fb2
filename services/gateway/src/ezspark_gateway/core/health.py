"""Run health, computed when read: phase, generations done of the total, tasks done in the
running generation, ETA, the age of the evolver's last event, and an explicit stall.

*Counting generations.*  ``Training.generations`` counts finished generations (a report of
the 0-based ``generation`` g makes it g + 1); pages, the list and ``ezspark watch`` show
that count, and the one running is number ``generations + 1`` (1-based).  Reports keep
their 0-based index (``ReportOut.generation``).

*Stalled.*  An active training (queued, running or stopping) is stalled when nothing came
from the evolver (no report, progress or waiting notice; before the first, since it was
created) for ``max(stall_min_s, STALL_FACTOR x typical generation time)`` (the setting
``stall_min_s``, default ``STALL_MIN_S``).  The typical
generation time is the median gap between the arrivals of the last ``RECENT`` reports,
zero gaps (a hand-over's local generations, stored at once) left out.

*ETA.*  Generations left x typical time, less the time the running one has already taken
(at most one typical time); none before two reports, or while stalled or waiting.  With a
``fitness_threshold`` it is an upper bound: the run may stop sooner.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ezspark_gateway.storage.models import GenerationRow, Training

STALL_MIN_S = 60.0
STALL_FACTOR = 5.0
RECENT = 10  # reports the typical generation time is measured on
_ACTIVE = frozenset({"queued", "running", "stopping"})


@dataclass(frozen=True)
class Health:
    """What the page, the API and ``ezspark watch`` say about a run's progress."""

    state: str  # queued | running | waiting | stalled | stopping | finished | failed | stopped
    stalled: bool
    stalled_after_s: float
    phase: str | None
    generations_done: int
    generations_total: int | None
    running_generation: int | None  # 1-based number of the generation being evaluated
    tasks_done: int | None
    tasks_total: int | None
    evaluators_answering: int | None
    evaluators_serving: int | None
    generation_s: float | None
    eta_s: float | None
    last_event_at: float | None
    last_event_age_s: float | None
    created_at: float
    finished_at: float | None
    elapsed_s: float
    finish_reason_text: str | None
    env_errors_text: str | None = None  # the newest report's failed environments, in words
    safeness_text: str | None = None  # the newest report's disagreeing re-checks, in words


def typical_generation_s(recent: Sequence[GenerationRow]) -> float | None:
    """Median gap between the arrivals of consecutive reports (zero gaps left out)."""
    rows = sorted(recent, key=lambda r: r.generation)
    gaps = [
        b.received_at - a.received_at
        for a, b in itertools.pairwise(rows)
        if b.generation == a.generation + 1 and b.received_at > a.received_at
    ]
    return statistics.median(gaps) if gaps else None


def stall_threshold_s(typical: float | None, minimum: float = STALL_MIN_S) -> float:
    """Silence after which an active run counts as stalled (``minimum``: the operator's
    ``stall_min_s``)."""
    return max(minimum, STALL_FACTOR * typical) if typical else minimum


def eta_s(left: int, typical: float | None, since_last_report: float | None) -> float | None:
    """Seconds until ``left`` more generations are done (see the module docstring)."""
    if typical is None or left <= 0:
        return None if typical is None else 0.0
    running = min(max(since_last_report or 0.0, 0.0), typical)
    return max(0.0, left * typical - running)


def finish_words(training: Training) -> str | None:
    """Why a run ended, in words; None while it is active."""
    config = training.config
    if training.status == "failed":
        return "failed: " + (training.error or "the evolver reported an error").splitlines()[0]
    if training.status == "stopped" or training.finish_reason == "stopped":
        return "stopped on request"
    if training.finish_reason == "fitness_threshold":
        return f"a genome reached the fitness threshold ({config.get('fitness_threshold')})"
    if training.finish_reason == "generations":
        return f"ran all {config.get('generations')} generations"
    return None


def _state_word(training: Training, stalled: bool) -> str:
    """The status, except that an active run says when it is stalled or waiting."""
    if training.status not in ("queued", "running"):
        return training.status
    if stalled:
        return "stalled"
    return "waiting" if training.waiting_reason else training.status


def run_health(
    training: Training,
    recent: Sequence[GenerationRow],
    now: float,
    evaluators_serving: int | None = None,
    stall_min_s: float = STALL_MIN_S,
) -> Health:
    """The health of ``training`` at ``now``; ``recent``: its newest reports."""
    active = training.status in _ACTIVE
    typical = typical_generation_s(recent)
    threshold = stall_threshold_s(typical, stall_min_s)
    heard = training.last_event_at or training.created_at
    stalled = active and now - heard > threshold
    total = training.config.get("generations")
    total = total if isinstance(total, int) else None
    done = training.generations
    last_report = max((r.received_at for r in recent), default=None)
    newest = max(recent, key=lambda r: r.generation, default=None)
    left = (total - done) if total is not None else 0
    eta = None
    if active and not stalled and training.waiting_reason is None and training.generations:
        eta = eta_s(left, typical, None if last_report is None else now - last_report)
    ended = training.finished_at or (None if active else training.updated_at)
    progress = active and training.progress_total is not None
    return Health(
        state=_state_word(training, stalled),
        stalled=stalled,
        stalled_after_s=threshold,
        phase=training.phase,
        generations_done=done,
        generations_total=total,
        running_generation=min(done + 1, total or done + 1) if active else None,
        tasks_done=training.progress_done if progress else None,
        tasks_total=training.progress_total if progress else None,
        evaluators_answering=training.progress_evaluators if active else None,
        evaluators_serving=evaluators_serving if active else None,
        generation_s=typical,
        eta_s=eta,
        last_event_at=training.last_event_at,
        last_event_age_s=None if training.last_event_at is None else now - training.last_event_at,
        created_at=training.created_at,
        finished_at=ended,
        elapsed_s=max(0.0, (ended if ended is not None else now) - training.created_at),
        finish_reason_text=finish_words(training),
        env_errors_text=env_errors_words(newest),
        safeness_text=safeness_words(newest),
    )


def safeness_words(newest: GenerationRow | None) -> str | None:
    """Re-checks that disagreed in the newest report, and what that usually means."""
    if newest is None or not newest.safeness_mismatches:
        return None
    return (
        f"{newest.safeness_mismatches} of {newest.safeness_checks} re-checked genomes got two "
        f"different answers in generation {newest.generation + 1}: the environment is "
        "probably not deterministic (`ezspark validate` checks it), or an evaluator answered "
        "falsely (it is quarantined for this training)"
    )


def env_errors_words(newest: GenerationRow | None) -> str | None:
    """How the environment failed in the newest report, in words; None when it did not
    (older ones do not count: a run that recovered is healthy)."""
    if newest is None or not newest.errors:
        return None
    why = f": {newest.first_error}" if newest.first_error else ""
    return (
        f"{newest.errors} of {newest.population} genomes failed in generation "
        f"{newest.generation + 1} (they get the floor fitness){why}"
    )
