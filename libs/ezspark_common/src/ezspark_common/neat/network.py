"""Feed-forward networks, many genomes at once.

Each non-input node computes ``softsign(Σ w·x + bias)`` with ``softsign(z) = z / (1 + |z|)``
over its enabled in-connections in innovation order; the action is the argmax of the output
nodes (first index on ties).  Softsign uses only IEEE-exact operations (+, ·, /, |·|), so a
network gives bit-identical outputs on every machine, unlike tanh or exp.

A batch lays every genome's nodes side by side in one value array of shape
``(games, slots)`` and evaluates node *levels* (longest path from the inputs) for all genomes
together.  Padding edges read a constant-zero slot with weight 0 and come after a node's real
edges, so a node's sum is the same sequence of operations whatever batch it is in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.genome import Genome


def softsign(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``z / (1 + |z|)``: a tanh-shaped squashing made of exact IEEE operations."""
    return np.asarray(z / (1.0 + np.abs(z)))


def node_levels(genome: Genome) -> dict[int, int]:
    """Level of each non-input node: 1 + the highest level among its enabled sources."""
    level: dict[int, int] = {}
    incoming: dict[int, list[int]] = {int(n): [] for n in genome.node_ids}
    for s, d, on in zip(genome.src.tolist(), genome.dst.tolist(), genome.enabled.tolist(),
                        strict=True):
        if on:
            incoming[d].append(s)
    pending = list(incoming)
    while pending:
        waiting = []
        for node in pending:
            srcs = incoming[node]
            if all(s < 0 or s in level for s in srcs):
                level[node] = 1 + max((level.get(s, 0) for s in srcs), default=0)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ValueError(f"genome {genome.key} has a cycle among enabled connections")
        pending = waiting
    return level


@dataclass(frozen=True)
class Level:
    """All nodes of one level across the batch, with padded in-edge tables."""

    dst: NDArray[np.int64]  # (nodes,) slot written
    bias: NDArray[np.float64]  # (nodes,)
    src: NDArray[np.int64]  # (nodes, width) slots read, padding → slot 0
    weight: NDArray[np.float64]  # (nodes, width), padding → 0.0


@dataclass(frozen=True)
class BatchNetwork:
    """Compiled networks of a batch of genomes sharing input and output sizes."""

    n_genomes: int
    n_inputs: int
    n_slots: int
    levels: tuple[Level, ...]
    outputs: NDArray[np.int64]  # (genomes, n_out) slots

    def input_slots(self) -> slice:
        """Where observations go: genome b's input i is slot ``1 + b · n_inputs + i``."""
        return slice(1, 1 + self.n_genomes * self.n_inputs)

    def new_values(self, games: int) -> NDArray[np.float64]:
        """A zeroed value array for ``games`` games per genome."""
        return np.zeros((games, self.n_slots), dtype=np.float64)

    def activate(self, values: NDArray[np.float64]) -> None:
        """Evaluate every level in place; inputs must already be in ``values``."""
        for lv in self.levels:
            acc = values[:, lv.src[:, 0]] * lv.weight[:, 0]
            for k in range(1, lv.src.shape[1]):
                acc += values[:, lv.src[:, k]] * lv.weight[:, k]
            acc += lv.bias
            values[:, lv.dst] = softsign(acc)

    def actions(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """Argmax output per (game, genome): shape ``(games, genomes)``."""
        return np.asarray(np.argmax(values[:, self.outputs], axis=2), dtype=np.int64)


GenomePlan = list[tuple[int, int, float, list[tuple[int, float]]]]


def genome_plan(genome: Genome) -> GenomePlan:
    """``(level, node, bias, [(source, weight)…])`` per node, edges in innovation order."""
    levels = node_levels(genome)
    edges: dict[int, list[tuple[int, float]]] = {int(n): [] for n in genome.node_ids}
    for s, d, w, on in zip(genome.src.tolist(), genome.dst.tolist(), genome.weight.tolist(),
                           genome.enabled.tolist(), strict=True):
        if on:
            edges[d].append((s, w))
    return [
        (levels[n], n, b, edges[n])
        for n, b in zip(genome.node_ids.tolist(), genome.biases.tolist(), strict=True)
    ]


def compile_batch(genomes: Sequence[Genome], n_inputs: int, n_outputs: int) -> BatchNetwork:
    """Lay out a batch of genomes for lockstep evaluation."""
    return compile_plans([genome_plan(g) for g in genomes], n_inputs, n_outputs)


def compile_plans(plans: Sequence[GenomePlan], n_inputs: int, n_outputs: int) -> BatchNetwork:
    """Lay out already-planned genomes (plans are reused when a batch is compacted)."""
    base = 1 + len(plans) * n_inputs
    by_level: dict[int, list[tuple[int, float, list[tuple[int, float]]]]] = {}
    outputs = np.zeros((len(plans), n_outputs), dtype=np.int64)
    for b, rows in enumerate(plans):
        slot_of = {n: base + i for i, (_, n, _, _) in enumerate(rows)}
        in_base = 1 + b * n_inputs
        for lvl, node, bias, edges in rows:
            slots = [(in_base - s - 1 if s < 0 else slot_of[s], w) for s, w in edges]
            by_level.setdefault(lvl, []).append((slot_of[node], bias, slots))
        outputs[b] = [slot_of[o] for o in range(n_outputs)]
        base += len(rows)
    levels = tuple(_pack_level(by_level[lvl]) for lvl in sorted(by_level))
    return BatchNetwork(len(plans), n_inputs, base, levels, outputs)


def _pack_level(nodes: list[tuple[int, float, list[tuple[int, float]]]]) -> Level:
    width = max(1, max(len(e) for _, _, e in nodes))
    src = np.zeros((len(nodes), width), dtype=np.int64)
    weight = np.zeros((len(nodes), width), dtype=np.float64)
    for i, (_, _, edges) in enumerate(nodes):
        if edges:
            src[i, : len(edges)] = [s for s, _ in edges]
            weight[i, : len(edges)] = [w for _, w in edges]
    return Level(
        dst=np.array([d for d, _, _ in nodes], dtype=np.int64),
        bias=np.array([b for _, b, _ in nodes], dtype=np.float64),
        src=src,
        weight=weight,
    )
