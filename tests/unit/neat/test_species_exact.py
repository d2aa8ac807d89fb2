"""Speciation's vectorised passes give exactly the species the plain loops over
``distance`` give: founding in blocks, and the nearest previous species."""

from __future__ import annotations

import numpy as np
import pytest

from ezspark_common.neat import distance as distance_module
from ezspark_common.neat.distance import distance
from ezspark_common.neat.genome import Genome, initial_genome
from ezspark_common.neat.mutation import InnovationTracker, add_connection, add_node
from ezspark_common.neat.species import Species, speciate


def _one_by_one(genomes: list[Genome], threshold: float) -> list[tuple[int, ...]]:
    """The plain greedy: the first genome left founds a species with every genome left
    within the threshold of it (the founder as representative)."""
    left, groups = list(range(len(genomes))), []
    while left:
        founder = genomes[left[0]]
        near = [r for r in left if r == left[0] or distance(genomes[r], founder) < threshold]
        groups.append(tuple(genomes[r].key for r in near))
        left = [r for r in left if r not in near]
    return groups


def _population(n: int, grown: float, seed: int) -> list[Genome]:
    """``n`` 3→2 genomes; a share ``grown`` of them get random extra nodes and connections,
    so some are far from every other (loners) while the rest stay alike."""
    rng = np.random.default_rng(seed)
    tracker = InnovationTracker(next_innov=6, next_node=2)
    out = []
    for key in range(n):
        g = initial_genome(key, 3, 2, rng, weight_std=0.3)
        if rng.random() < grown:
            for _ in range(int(rng.integers(1, 6))):
                g = add_node(g, rng, tracker)
                g = add_connection(g, 3, rng, tracker)
        out.append(g)
    return out


@pytest.mark.parametrize(
    ("grown", "threshold"),
    [(0.0, 3.0), (1.0, 0.5), (1.0, 3.0), (0.5, 1.5), (0.9, 2.0), (0.3, 0.05)],
)
def test_founding_in_blocks_matches_the_one_by_one_loop(grown: float, threshold: float) -> None:
    """Whether one founder takes most genomes or most found their own species, the blocks
    give the same species, members and order as founding them one at a time."""
    genomes = _population(250, grown, seed=int(grown * 10 + threshold * 100))
    species, next_id = speciate(genomes, (), threshold, 0, 0)
    assert [s.members for s in species] == _one_by_one(genomes, threshold)
    assert [s.representative.key for s in species] == [s.members[0] for s in species]
    assert next_id == len(species)


def _nearest(genome: Genome, previous: list[Species], threshold: float) -> int | None:
    """The plain search: the id of the closest representative within the threshold (the
    first of equals), or None."""
    best, best_d = None, threshold
    for s in previous:
        d = distance(genome, s.representative)
        if d < best_d:
            best, best_d = s.id, d
    return best


@pytest.mark.parametrize("common", [1, 32, 10**9])
@pytest.mark.parametrize("threshold", [0.5, 3.0])
def test_genomes_join_the_nearest_previous_species_as_the_plain_search_finds(
    threshold: float, common: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without hints every genome joins the closest representative within the threshold,
    including when the representatives hold genes no genome has, and the reverse, whether
    shared genes are counted by matrix product (all genes common), by joining gene lists
    (none), or both."""
    monkeypatch.setattr(distance_module, "COMMON_GENE_REPS", common)
    reps = _population(120, 0.8, seed=7)
    previous = [Species(100 + i, r, (r.key,), 0, 0.0, 0) for i, r in enumerate(reps)]
    genomes = [g.with_key(1000 + g.key) for g in _population(300, 0.8, seed=8)]
    species, _ = speciate(genomes, previous, threshold, 1, 500)
    joined = {k: s.id for s in species if s.id < 500 for k in s.members}
    expected = {g.key: _nearest(g, previous, threshold) for g in genomes}
    assert joined == {k: sid for k, sid in expected.items() if sid is not None}
    assert 0 < len(joined) < len(genomes)
