"""Test helpers: random but valid genomes with hidden nodes and disabled connections."""

from __future__ import annotations

import numpy as np

from ezspark_common.neat.genome import Genome, initial_genome
from ezspark_common.neat.mutation import (
    InnovationTracker,
    add_connection,
    add_node,
    toggle_connection,
)


def random_genome(key: int, n_in: int, n_out: int, seed: int, steps: int = 12) -> Genome:
    """An initial genome grown by ``steps`` random structural mutations."""
    rng = np.random.default_rng(seed)
    genome = initial_genome(key, n_in, n_out, rng)
    tracker = InnovationTracker(next_innov=n_in * n_out + 1000 * seed, next_node=n_out + 100 * seed)
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.4:
            genome = add_node(genome, rng, tracker)
        elif roll < 0.8:
            genome = add_connection(genome, n_in, rng, tracker)
        else:
            genome = toggle_connection(genome, rng, enable=False)
    biases = rng.normal(0, 1, genome.biases.shape[0])
    return genome.with_weights(genome.weight.copy(), biases)
