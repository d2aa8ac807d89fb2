"""``report_for`` describes the population's shape (species sizes, genome sizes), keeps it
through a checkpoint, and ``phase_of`` splits the alone phase from the rest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ezspark_common.config import config_with, load_config
from ezspark_common.evaluation.batch import Outcome
from ezspark_common.trainer.training import (
    GenerationReport,
    TrainingState,
    phase_of,
    report_for,
    start,
    state_from_dict,
    state_to_dict,
)
from tests.support.configs import REPO


def _state() -> TrainingState:
    base = load_config(REPO / "examples" / "spec-example.json")
    config = config_with(
        base,
        gym_game_name="CartPole-v1",
        initial_population=30,
        seed=4,
        alone_training_iterations=2,
    )
    return start(config)


def test_report_counts_species_members_and_genome_sizes() -> None:
    """Species sizes sum to the population, largest first; sizes match the genomes."""
    state = _state()
    pop = state.population
    outcomes = {k: Outcome(k, (float(k % 7),), 10, None) for k in pop.genomes}
    report = report_for(state, outcomes, 1.0)
    assert sum(report.species_sizes) == len(pop.genomes)
    assert list(report.species_sizes) == sorted(report.species_sizes, reverse=True)
    nodes = [len(g.node_ids) for g in pop.genomes.values()]
    links = [int(np.count_nonzero(g.enabled)) for g in pop.genomes.values()]
    assert report.mean_nodes == sum(nodes) / len(nodes)
    assert report.mean_connections == sum(links) / len(links)
    best = pop.genomes[report.best_genome_key]
    assert report.best_nodes == len(best.node_ids)
    assert report.best_connections == int(np.count_nonzero(best.enabled))


def test_shape_survives_a_checkpoint_and_old_reports_load() -> None:
    """The new fields round-trip through the checkpoint; a report without them loads."""
    state = _state()
    outcomes = {k: Outcome(k, (1.0,), 10, None) for k in state.population.genomes}
    report = report_for(state, outcomes, 1.0)
    back = state_from_dict(state_to_dict(replace(state, history=(report,))))
    assert back.history == (report,)
    old = {k: v for k, v in report.to_dict().items() if k not in ("species_sizes", "mean_nodes")}
    loaded = GenerationReport.from_dict(old)
    assert loaded.species_sizes == ()
    assert loaded.mean_nodes is None


def test_phase_of_splits_at_alone_training_iterations() -> None:
    """Generations before alone_training_iterations are local, the rest distributed."""
    config = _state().config
    assert [phase_of(config, g) for g in range(4)] == [
        "local",
        "local",
        "distributed",
        "distributed",
    ]
