"""The evolver's Prometheus metrics (names the dashboards expect, plus a few extras)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

GENERATION_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
)


# Field of ``EvolverMetrics``: (kind, metric name, help, labels); the histogram is apart.
_PLAIN: dict[str, tuple[type[Counter] | type[Gauge], str, str, tuple[str, ...]]] = {
    "generations": (
        Counter,
        "ezspark_evolver_generations_total",
        "Generations evaluated and bred.",
        ("training",),
    ),
    "in_flight": (
        Gauge,
        "ezspark_evolver_tasks_in_flight",
        "Tasks published and not yet answered.",
        (),
    ),
    "redispatched": (
        Counter,
        "ezspark_evolver_tasks_redispatched_total",
        "Tasks published again (overdue, or answered by an evaluator that may not answer it).",
        (),
    ),
    "checks": (
        Counter,
        "ezspark_evolver_safeness_checks_total",
        "Genome results compared with a second evaluation.",
        (),
    ),
    "mismatches": (
        Counter,
        "ezspark_evolver_safeness_mismatches_total",
        "Genome results that differed from their re-check.",
        (),
    ),
    "population": (
        Gauge,
        "ezspark_evolver_population",
        "Genomes in the last generation.",
        ("training",),
    ),
    "species": (Gauge, "ezspark_evolver_species", "Species in the last generation.", ("training",)),
    "best_fitness": (
        Gauge,
        "ezspark_evolver_best_fitness",
        "Best fitness of the last generation.",
        ("training",),
    ),
    "ignored": (
        Counter,
        "ezspark_evolver_results_ignored_total",
        "Results not used, by reason: stale, unattributed, unauthorized, "
        "duplicate, declined, quarantined, same_evaluator, invalid.",
        ("reason",),
    ),
    "quarantined": (
        Counter,
        "ezspark_evolver_quarantined_evaluators_total",
        "Evaluators quarantined for a training after a safeness mismatch.",
        (),
    ),
    "skipped_checks": (
        Counter,
        "ezspark_evolver_safeness_skipped_total",
        "Sampled genomes not re-checked: no second evaluator served the environment.",
        (),
    ),
    "speculative": (
        Counter,
        "ezspark_evolver_tasks_speculative_total",
        "Tasks published once more while evaluators were idle at the end of a generation.",
        (),
    ),
    "waiting": (
        Gauge,
        "ezspark_evolver_trainings_waiting",
        "Trainings waiting for an evaluator of their environment.",
        (),
    ),
    "leader": (
        Gauge,
        "ezspark_evolver_leader",
        "1 while this evolver is the active one, 0 while standby.",
        (),
    ),
    "bad_messages": (
        Counter,
        "ezspark_evolver_bad_messages_total",
        "Undecodable or unexpected messages dead-lettered.",
        ("queue",),
    ),
    "active": (Gauge, "ezspark_evolver_trainings_active", "Trainings being run now.", ()),
}


@dataclass(frozen=True)
class EvolverMetrics:
    """Counters and gauges of one evolver process."""

    generations: Counter
    generation_seconds: Histogram
    in_flight: Gauge
    redispatched: Counter
    checks: Counter
    mismatches: Counter
    population: Gauge
    species: Gauge
    best_fitness: Gauge
    ignored: Counter
    quarantined: Counter
    skipped_checks: Counter
    speculative: Counter
    waiting: Gauge
    leader: Gauge
    bad_messages: Counter
    active: Gauge

    @staticmethod
    def create(registry: CollectorRegistry) -> EvolverMetrics:
        """Register the metrics in ``registry``."""
        made: dict[str, Any] = {
            field: kind(name, doc, labels, registry=registry)
            for field, (kind, name, doc, labels) in _PLAIN.items()
        }
        made["generation_seconds"] = Histogram(
            "ezspark_evolver_generation_seconds",
            "Wall time of one generation's evaluation.",
            buckets=GENERATION_BUCKETS,
            registry=registry,
        )
        return EvolverMetrics(**made)

    def forget(self, training_id: str) -> None:
        """Drop a finished training's labelled series (keeps cardinality bounded)."""
        for metric in (self.generations, self.population, self.species, self.best_fitness):
            with contextlib.suppress(KeyError):
                metric.remove(training_id)
