"""``target_species`` merges species: lineage alone would keep every species alive."""

from __future__ import annotations

import numpy as np

from ezspark_common.neat.distance import distance
from ezspark_common.neat.genome import Genome, initial_genome
from ezspark_common.neat.population import initial_population, next_generation
from ezspark_common.neat.species import Species, merge_closest, speciate
from tests.unit.test_config_effects import cfg


def _genome(key: int, weights: list[float]) -> Genome:
    """A 2-input, 1-output genome with the given weights."""
    g = initial_genome(key, 2, 1, np.random.default_rng(0), 1.0)
    return g.with_weights(np.array(weights), g.biases.copy())


def _species(
    sid: int, rep: Genome, members: tuple[int, ...], best: float, improved: int
) -> Species:
    return Species(sid, rep, members, created=sid, best_fitness=best, last_improved=improved)


def _three() -> list[Species]:
    """Species 0 and 2 have close representatives; species 1 is far from both."""
    return [
        _species(0, _genome(0, [0.0, 0.0]), (0, 1), best=5.0, improved=3),
        _species(1, _genome(2, [9.0, 9.0]), (2,), best=7.0, improved=1),
        _species(2, _genome(3, [0.5, 0.0]), (3, 4), best=9.0, improved=6),
    ]


def test_merge_closest_joins_the_closest_pair_into_the_older_species() -> None:
    """Above the target the closest pair merges; the older keeps id, rep, age, best record."""
    kept, moved = merge_closest(_three(), threshold=100.0, target=2)
    assert [s.id for s in kept] == [0, 1]
    assert moved == {2: 0}
    merged = kept[0]
    assert merged.members == (0, 1, 3, 4)
    assert (merged.representative.key, merged.created) == (0, 0)
    assert (merged.best_fitness, merged.last_improved) == (9.0, 6)


def test_merge_closest_stops_at_the_target_and_at_the_threshold() -> None:
    """Nothing merges at or below the target, nor across a distance at/above the threshold."""
    three = _three()
    assert merge_closest(three, threshold=100.0, target=3) == (tuple(three), {})
    close = distance(three[0].representative, three[2].representative)
    kept, moved = merge_closest(three, threshold=close, target=1)
    assert (len(kept), moved) == (3, {})  # the closest pair sits exactly at the threshold
    kept, moved = merge_closest(three, threshold=close * 1.01, target=1)
    assert ([s.id for s in kept], moved) == ([0, 1], {2: 0})  # the far one stays apart


def test_speciate_sends_a_merged_species_genomes_to_the_absorbing_species() -> None:
    """A child bred in a merged-away species joins the species that absorbed it."""
    child = _genome(10, [0.4, 0.1])
    species, _ = speciate([child], _three(), 100.0, 7, 3, hints=[2], target=2)
    assert [(s.id, s.members) for s in species] == [(0, (10,))]


def test_target_species_brings_many_lineages_down_to_the_target() -> None:
    """On a flat fitness (no species dies out) 29 species merge to about 3 within 10
    generations; by lineage alone all 28 that breed would live until they stagnate."""
    config = cfg(
        initial_population=60,
        max_population=60,
        species_threshold=0.3,
        target_species=3,
        connection_mutation_rate=0.2,
    )
    pop = initial_population(config)
    assert len(pop.species) > 20
    counts = []
    for _ in range(10):
        pop = next_generation(pop, dict.fromkeys(pop.genomes, 1.0), config)
        counts.append(len(pop.species))
    assert counts[-1] <= 4, counts
