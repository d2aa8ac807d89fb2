"""Structural and weight mutation keep genomes valid: sorted, consistent and acyclic."""

from __future__ import annotations

import numpy as np

from ezspark_common.neat.crossover import crossover
from ezspark_common.neat.genome import check_genome, initial_genome
from ezspark_common.neat.mutation import (
    InnovationTracker,
    StructuralRates,
    mutate_structure,
    mutate_weights,
)


def test_random_structural_mutations_keep_every_invariant() -> None:
    """Thousands of random mutations never break ordering, lengths or acyclicity."""
    rng = np.random.default_rng(0)
    rates = StructuralRates(add_connection=0.6, add_node=0.4, activate=0.3, remove=0.3)
    genomes = [initial_genome(k, 3, 2, rng) for k in range(20)]
    for generation in range(40):
        tracker = InnovationTracker(1000 + generation * 100, 50 + generation * 20)
        genomes = [mutate_structure(g, rates, 3, rng, tracker) for g in genomes]
        for g in genomes:
            check_genome(g)
            assert np.all(np.diff(g.innov) > 0)
            assert np.all(np.diff(g.node_ids) > 0)
    assert max(len(g.node_ids) for g in genomes) > 5  # the loop really grew networks


def test_same_structural_change_in_one_generation_shares_innovations() -> None:
    """Two genomes splitting the same gene in one generation get the same node and genes."""
    rng = np.random.default_rng(1)
    parent = initial_genome(0, 1, 2, rng)
    tracker = InnovationTracker(10, 5)
    assert tracker.split(0) == tracker.split(0)
    assert tracker.connection(-1, 7) == tracker.connection(-1, 7)
    assert tracker.split(1) != tracker.split(0)
    check_genome(parent)


def test_mutated_genomes_are_read_only() -> None:
    """Mutation returns new genomes whose columns cannot be written in place."""
    rng = np.random.default_rng(2)
    genomes = [initial_genome(k, 2, 2, rng) for k in range(3)]
    mutated = mutate_weights(genomes, 1.0, 0.0, rng)
    for g in mutated:
        assert not g.weight.flags.writeable
        assert not g.biases.flags.writeable
    assert not np.array_equal(mutated[0].weight, genomes[0].weight)


def test_crossover_child_is_a_valid_copy_of_the_fitter_structure() -> None:
    """A crossover child has the fitter parent's genes and values from either parent."""
    rng = np.random.default_rng(3)
    rates = StructuralRates(add_connection=1.0, add_node=1.0, activate=0.0, remove=0.0)
    tracker = InnovationTracker(100, 10)
    a = mutate_structure(initial_genome(0, 3, 2, rng), rates, 3, rng, tracker)
    b = initial_genome(1, 3, 2, rng)
    child = crossover(a, b, 9, rng)
    check_genome(child)
    assert np.array_equal(child.innov, a.innov)
    shared = np.isin(a.innov, b.innov)
    from_b = np.isin(child.weight[shared], b.weight)
    from_a = np.isin(child.weight[shared], a.weight[shared])
    assert np.all(from_a | from_b)
    assert from_b.any()
    assert from_a.any()
