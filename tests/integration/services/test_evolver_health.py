"""The real evolver, over the real RabbitMQ, publishes what run health needs: progress
events while a generation runs, and reports with the population's shape, the phase and
the champion."""

from __future__ import annotations

import uuid
from pathlib import Path

from ezspark_common.wire.messages import GenerationFinished, GenerationProgressed
from tests.integration.services.harness import (
    bus,
    config,
    embedded,
    evaluator_thread,
    evolver_thread,
    finished,
    new_prefix,
)
from tests.support.waiting import wait_until


def test_evolver_publishes_progress_shape_phase_and_champion(tmp_path: Path) -> None:
    """Every generation has progress events (done within total, never going back, one
    evaluator) and a report whose species sizes sum to the population, with genome sizes,
    phase local for the alone generation and distributed after, and the champion exactly
    when the best improved (it equals the embedded run's best of that generation)."""
    prefix, tid = new_prefix(), f"t-{uuid.uuid4().hex[:8]}"
    cfg = config(alone_training_iterations=1, generations=4)
    with bus(prefix) as b, evaluator_thread(prefix), evolver_thread(prefix, tmp_path):
        b.request(tid, cfg)
        finished(tmp_path, tid)
        wait_until(lambda: b.events_of(tid, "training_finished"), 10, "TrainingFinished")
    reports: dict[int, GenerationFinished] = {
        r.generation: r for r in b.events_of(tid, "generation_report")
    }
    progress: list[GenerationProgressed] = b.events_of(tid, "generation_progressed")
    assert sorted(reports) == [0, 1, 2, 3]
    assert sorted({p.generation for p in progress}) == [0, 1, 2, 3]
    for gen in range(4):
        mine = [p for p in progress if p.generation == gen]
        assert [p.done for p in mine] == sorted(p.done for p in mine)
        assert len({p.total for p in mine}) == 1
        assert all(p.done <= p.total and p.evaluators <= 1 for p in mine)
        assert {p.phase for p in mine} == {"local" if gen == 0 else "distributed"}
    want = embedded(cfg)
    best = float("-inf")
    for gen, report in sorted(reports.items()):
        assert report.species_sizes is not None
        assert sum(report.species_sizes) == report.population
        assert report.species_sizes == sorted(report.species_sizes, reverse=True)
        assert report.mean_nodes is not None
        assert report.mean_nodes >= cfg["output_size"]
        assert report.best_connections is not None
        assert report.mean_connections is not None
        assert report.phase == ("local" if gen == 0 else "distributed")
        assert want.history[gen].species_sizes == tuple(report.species_sizes)
        improved = report.best_fitness > best
        best = max(best, report.best_fitness)
        assert (report.champion is not None) == improved, gen
        if report.champion is not None:
            assert report.champion.fitness == report.best_fitness
            assert report.champion.genome.key == report.best_genome_key
