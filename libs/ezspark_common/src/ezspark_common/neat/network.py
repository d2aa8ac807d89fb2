"""Feed-forward networks, many genomes at once.

Each non-input node computes ``softsign(Σ w·x + bias)`` with ``softsign(z) = z / (1 + |z|)``
over its enabled in-connections in innovation order; the action is the argmax of the output
nodes (first index on ties).  Softsign uses only IEEE-exact operations (+, ·, /, |·|), so a
network gives bit-identical outputs on every machine, unlike tanh or exp.

A batch lays every genome's nodes side by side in one value array of shape
``(slots, games)`` and evaluates node *levels* (longest path from the inputs) for all genomes
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


def _enabled_edges(genome: Genome) -> dict[int, list[tuple[int, float]]]:
    """Each non-input node's enabled in-connections ``(source, weight)`` in innovation order."""
    edges: dict[int, list[tuple[int, float]]] = {n: [] for n in genome.node_ids.tolist()}
    for s, d, w, on in zip(genome.src.tolist(), genome.dst.tolist(), genome.weight.tolist(),
                           genome.enabled.tolist(), strict=True):
        if on:
            edges[d].append((s, w))
    return edges


def _levels(edges: dict[int, list[tuple[int, float]]], key: int) -> dict[int, int]:
    """Longest-path level of every node: one depth-first visit per node and edge."""
    level: dict[int, int] = {}
    on_path: set[int] = set()

    def visit(node: int) -> int:
        found = level.get(node)
        if found is not None:
            return found
        if node in on_path:
            raise ValueError(f"genome {key} has a cycle among enabled connections")
        on_path.add(node)
        deepest = 0
        for src, _ in edges[node]:
            if src >= 0:
                deepest = max(deepest, visit(src))
        on_path.discard(node)
        level[node] = deepest + 1
        return deepest + 1

    for node in edges:
        visit(node)
    return level


def node_levels(genome: Genome) -> dict[int, int]:
    """Level of each non-input node: 1 + the highest level among its enabled sources."""
    return _levels(_enabled_edges(genome), genome.key)


@dataclass(frozen=True)
class Level:
    """All nodes of one level across the batch; they own the slots ``start:stop``."""

    start: int
    stop: int
    src: NDArray[np.int64]  # (width, nodes) slots read, padding → slot 0
    weight: NDArray[np.float64]  # (width, nodes), padding → 0.0
    bias: NDArray[np.float64]  # (nodes,)


@dataclass(frozen=True)
class BatchNetwork:
    """Compiled networks of a batch of genomes sharing input and output sizes.

    Values live in a ``(games, slots)`` array; each level's nodes occupy consecutive slots,
    so a level is one gather (``np.take``), a few vector operations and one slice write.
    """

    n_genomes: int
    n_inputs: int
    n_slots: int
    levels: tuple[Level, ...]
    outputs: NDArray[np.int64]  # (genomes, n_out) slots

    def input_slots(self) -> slice:
        """Where observations go: genome b's input i is slot ``1 + b · n_inputs + i``."""
        return slice(1, 1 + self.n_genomes * self.n_inputs)

    def new_values(self, games: int) -> NDArray[np.float64]:
        """A zeroed value array: one row per game, one column per slot."""
        return np.zeros((games, self.n_slots), dtype=np.float64)

    def set_inputs(self, values: NDArray[np.float64], obs: NDArray[np.float64]) -> None:
        """Write observations shaped ``(games, genomes · n_inputs)`` into ``values``."""
        values[:, self.input_slots()] = obs

    def output_values(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Output node values shaped ``(games, genomes, n_outputs)``."""
        return np.asarray(values[:, self.outputs])

    def activate(self, values: NDArray[np.float64]) -> None:
        """Evaluate every level in place; inputs must already be in ``values``."""
        for lv in self.levels:
            terms = np.take(values, lv.src, axis=1)  # (games, width, nodes)
            terms *= lv.weight
            acc = terms[:, 0]
            for k in range(1, lv.src.shape[0]):  # in order: the same sum in any batch
                acc += terms[:, k]
            acc += lv.bias
            values[:, lv.start : lv.stop] = acc / (1.0 + np.abs(acc))  # softsign

    def actions(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """Argmax output per (game, genome): shape ``(games, genomes)``."""
        return np.asarray(np.argmax(values[:, self.outputs], axis=2), dtype=np.int64)


GenomePlan = list[tuple[int, int, float, list[tuple[int, float]]]]


def genome_plan(genome: Genome) -> GenomePlan:
    """``(level, node, bias, [(source, weight)…])`` per node, edges in innovation order."""
    edges = _enabled_edges(genome)
    if all(s < 0 for s in genome.src.tolist()):  # no hidden links: every node is level 1
        return [(1, n, b, edges[n])
                for n, b in zip(genome.node_ids.tolist(), genome.biases.tolist(), strict=True)]
    levels = _levels(edges, genome.key)
    return [
        (levels[n], n, b, edges[n])
        for n, b in zip(genome.node_ids.tolist(), genome.biases.tolist(), strict=True)
    ]


def compile_batch(genomes: Sequence[Genome], n_inputs: int, n_outputs: int) -> BatchNetwork:
    """Lay out a batch of genomes for lockstep evaluation."""
    return compile_plans([genome_plan(g) for g in genomes], n_inputs, n_outputs)


def compile_plans(plans: Sequence[GenomePlan], n_inputs: int, n_outputs: int) -> BatchNetwork:
    """Lay out already-planned genomes (plans are reused when a batch is compacted)."""
    by_level: dict[int, list[tuple[int, int, float, list[tuple[int, float]]]]] = {}
    for b, rows in enumerate(plans):
        for lvl, node, bias, edges in rows:
            by_level.setdefault(lvl, []).append((b, node, bias, edges))
    slot_of: dict[tuple[int, int], int] = {}
    next_slot = 1 + len(plans) * n_inputs
    for lvl in sorted(by_level):  # a level's nodes get consecutive slots
        for b, node, _, _ in by_level[lvl]:
            slot_of[(b, node)] = next_slot
            next_slot += 1
    levels = []
    for lvl in sorted(by_level):
        nodes = by_level[lvl]
        start = slot_of[(nodes[0][0], nodes[0][1])]
        levels.append(_pack_level(start, nodes, slot_of, n_inputs))
    outputs = np.array([[slot_of[(b, o)] for o in range(n_outputs)] for b in range(len(plans))],
                       dtype=np.int64).reshape(len(plans), n_outputs)
    return BatchNetwork(len(plans), n_inputs, next_slot, tuple(levels), outputs)


def _pack_level(
    start: int, nodes: list[tuple[int, int, float, list[tuple[int, float]]]],
    slot_of: dict[tuple[int, int], int], n_inputs: int,
) -> Level:
    width = max(1, max(len(e) for _, _, _, e in nodes))
    src = np.zeros((width, len(nodes)), dtype=np.int64)
    weight = np.zeros((width, len(nodes)), dtype=np.float64)
    for i, (b, _, _, edges) in enumerate(nodes):
        for k, (s, w) in enumerate(edges):
            src[k, i] = 1 + b * n_inputs - s - 1 if s < 0 else slot_of[(b, s)]
            weight[k, i] = w
    return Level(
        start=start,
        stop=start + len(nodes),
        src=src,
        weight=weight,
        bias=np.array([bias for _, _, bias, _ in nodes], dtype=np.float64),
    )
