"""Recurrent networks (the ``recurrent`` config key): memory from one step to the next.

Every non-input node holds a value that persists within a game.  At each step every node
computes ``softsign(Σ w·x + bias)`` over its enabled in-connections in innovation order,
where ``x`` is the *current* observation for an input source and the *previous step's*
value for a node source (0 at the start of every game).  So every connection leaving a
node is a one-step delay, cycles and self-loops need no special case, and a step is one
level of the batched core (``BatchPlan(..., recurrent=True)`` puts every node on level 1:
the level's gather copies the old values before any is overwritten).  This is
neat-python's ``RecurrentNetwork`` update, with softsign.

Batch independence holds as for feed-forward networks: a node's sum is the same sequence
of operations in any batch.  When finished genomes are compacted away, :func:`carry` moves
the survivors' node values into the new layout, so compaction never changes a game.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.genome import Genome
from ezspark_common.neat.network import BatchNetwork, in_edges


def carry(
    old: BatchNetwork,
    old_values: NDArray[np.float64],
    new: BatchNetwork,
    new_values: NDArray[np.float64],
) -> None:
    """Copy each node's state from ``old``'s layout into ``new``'s (same plan, fewer genomes)."""
    rows = np.flatnonzero(new.node_slots)
    new_values[new.node_slots[rows]] = old_values[old.node_slots[rows]]


class ReferenceNetwork:
    """One genome, one game, one node at a time: the definition the batched core must match."""

    def __init__(self, genome: Genome, n_outputs: int) -> None:
        self.edges = in_edges(genome)
        self.bias = dict(zip(genome.node_ids.tolist(), genome.biases.tolist(), strict=True))
        self.n_outputs = n_outputs
        self.reset()

    def reset(self) -> None:
        """Forget everything: the state at the start of a game."""
        self.state = dict.fromkeys(self.bias, 0.0)

    def step(self, obs: NDArray[np.float64]) -> list[float]:
        """Advance one step on observation ``obs``; returns the output values."""
        old = self.state
        new = {}
        for node, edges in self.edges.items():
            total = 0.0
            for k, (src, w) in enumerate(edges):
                x = float(obs[-src - 1]) if src < 0 else old[src]
                total = x * w if k == 0 else total + x * w
            total += self.bias[node]
            new[node] = total / (1.0 + abs(total))  # softsign, the same IEEE operations
        self.state = new
        return [new[o] for o in range(self.n_outputs)]
