"""Batched feed-forward networks against a node-by-node reference."""

from __future__ import annotations

import numpy as np
import pytest

from ezspark_common.neat.genome import Genome
from ezspark_common.neat.network import compile_batch, node_levels
from tests.support.genomes import random_genome


def reference_outputs(genome: Genome, inputs: list[float], n_out: int) -> list[float]:
    """Evaluate one genome for one input vector, recursively, one node at a time."""
    cache: dict[int, float] = {}

    def value(node: int) -> float:
        if node < 0:
            return inputs[-node - 1]
        if node not in cache:
            total = 0.0
            for s, d, w, on in zip(
                genome.src.tolist(),
                genome.dst.tolist(),
                genome.weight.tolist(),
                genome.enabled.tolist(),
                strict=True,
            ):
                if on and d == node:
                    total += value(s) * w
            i = genome.node_ids.tolist().index(node)
            z = total + genome.biases[i]
            cache[node] = z / (1.0 + abs(z))
        return cache[node]

    return [value(o) for o in range(n_out)]


def test_batch_outputs_equal_reference_bit_for_bit() -> None:
    """Every genome's outputs in a mixed batch equal the one-at-a-time reference exactly."""
    genomes = [random_genome(k, 4, 3, seed=k, steps=15) for k in range(12)]
    net = compile_batch(genomes, 4, 3)
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 2, (5, 12, 4))  # 5 games × 12 genomes
    values = net.new_values(5)
    net.set_inputs(values, obs.reshape(5, 12 * 4))
    net.activate(values)
    outs = net.output_values(values)
    for b, g in enumerate(genomes):
        for game in range(5):
            assert outs[game, b].tolist() == reference_outputs(g, obs[game, b].tolist(), 3)


def test_outputs_do_not_depend_on_batch_companions() -> None:
    """A genome's outputs are identical alone and inside a batch of bigger networks."""
    genomes = [random_genome(k, 3, 2, seed=100 + k, steps=25) for k in range(8)]
    x = np.array([[0.3, -1.2, 2.5]])
    alone = compile_batch([genomes[0]], 3, 2)
    va = alone.new_values(1)
    alone.set_inputs(va, x)
    alone.activate(va)
    batch = compile_batch(genomes, 3, 2)
    vb = batch.new_values(1)
    batch.set_inputs(vb, np.tile(x, (1, 8)))
    batch.activate(vb)
    assert alone.output_values(va)[:, 0].tobytes() == batch.output_values(vb)[:, 0].tobytes()


def test_levels_follow_longest_path() -> None:
    """A node fed by a hidden node sits one level above it."""
    g = Genome.build(
        0,
        [0, 1, 2],
        [0, 0, 0],
        [0, 1, 2],
        [-1, 2, -1],
        [2, 0, 1],
        [1.0, 1.0, 1.0],
        [True, True, True],
    )
    assert node_levels(g) == {0: 2, 1: 1, 2: 1}


def test_disabled_connections_carry_nothing() -> None:
    """Disabling the only connection makes the output depend on its bias alone."""
    g = Genome.build(0, [0, 1], [0.5, -0.5], [0, 1], [-1, -1], [0, 1], [3.0, -3.0], [False, True])
    net = compile_batch([g], 1, 2)
    v = net.new_values(1)
    net.set_inputs(v, np.array([[7.0]]))
    net.activate(v)
    assert net.output_values(v)[0, 0, 0] == pytest.approx(0.5 / 1.5)


def test_cycle_among_enabled_connections_is_refused() -> None:
    """A genome whose enabled connections loop cannot be laid out in levels."""
    g = Genome.build(
        0,
        [0, 1, 2],
        [0, 0, 0],
        [0, 1, 2],
        [-1, 2, 1],
        [1, 1, 2],
        [1.0, 1.0, 1.0],
        [True, True, True],
    )
    with pytest.raises(ValueError, match="cycle"):
        node_levels(g)


def test_connection_from_an_input_the_network_lacks_is_refused() -> None:
    """A source beyond n_inputs would read a neighbour's inputs, so compiling refuses it."""
    g = Genome.build(0, [0, 1], [0.0, 0.0], [0, 1], [-1, -5], [0, 1], [1.0, 1.0], [True, True])
    compile_batch([g], 5, 2)  # five inputs: input -5 exists
    with pytest.raises(ValueError, match="input 4"):
        compile_batch([g], 4, 2)
