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

from ezspark_common.neat.genome import FloatArray, Genome, IntArray
from ezspark_common.neat.packed import PackedGenomes, longest_paths


def softsign(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``z / (1 + |z|)``: a tanh-shaped squashing made of exact IEEE operations."""
    return np.asarray(z / (1.0 + np.abs(z)))


def in_edges(genome: Genome) -> dict[int, list[tuple[int, float]]]:
    """Each non-input node's enabled in-connections ``(source, weight)`` in innovation order."""
    edges: dict[int, list[tuple[int, float]]] = {n: [] for n in genome.node_ids.tolist()}
    for s, d, w, on in zip(
        genome.src.tolist(),
        genome.dst.tolist(),
        genome.weight.tolist(),
        genome.enabled.tolist(),
        strict=True,
    ):
        if on:
            edges[d].append((s, w))
    return edges


def node_levels(genome: Genome) -> dict[int, int]:
    """Level of each non-input node: 1 + the highest level among its enabled sources."""
    plan = BatchPlan([genome])
    return dict(zip(genome.node_ids.tolist(), plan.node_level.tolist(), strict=True))


@dataclass(frozen=True)
class Level:
    """All nodes of one level across the batch; they own the slots ``start:stop``."""

    start: int
    stop: int
    src: NDArray[np.int64]  # (width, nodes) slots read, padding → slot 0
    weight: NDArray[np.float64]  # (width, nodes, 1), padding → 0.0
    bias: NDArray[np.float64]  # (nodes, 1)


@dataclass(frozen=True)
class BatchNetwork:
    """Compiled networks of a batch of genomes sharing input and output sizes.

    Values live in a ``(slots, games)`` array; each level's nodes occupy consecutive slots,
    so a level is one gather (``np.take``), a few vector operations and one slice write.
    """

    n_genomes: int
    n_inputs: int
    n_slots: int
    levels: tuple[Level, ...]
    outputs: NDArray[np.int64]  # (genomes, n_out) slots
    node_slots: NDArray[np.int64]  # slot of every plan node row, 0 for genomes left out

    def input_slots(self) -> slice:
        """Where observations go: genome b's input i is slot ``1 + b · n_inputs + i``."""
        return slice(1, 1 + self.n_genomes * self.n_inputs)

    def new_values(self, games: int) -> NDArray[np.float64]:
        """A zeroed value array: one row per slot, one column per game."""
        return np.zeros((self.n_slots, games), dtype=np.float64)

    def set_inputs(self, values: NDArray[np.float64], obs: NDArray[np.float64]) -> None:
        """Write observations shaped ``(games, genomes · n_inputs)`` into ``values``."""
        values[self.input_slots()] = obs.T

    def output_values(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Output node values shaped ``(games, genomes, n_outputs)``."""
        return np.asarray(values[self.outputs].transpose(2, 0, 1))

    def activate(self, values: NDArray[np.float64]) -> None:
        """Evaluate every level in place; inputs must already be in ``values``.

        Slots are rows, so a level's gathered terms and its output are contiguous blocks and
        every operation writes into an existing array: per level, one gather and a handful
        of in-place vector operations, whatever the batch size.
        """
        for lv in self.levels:
            terms = values.take(lv.src, axis=0)  # (width, nodes, games)
            terms *= lv.weight
            acc = terms[0]
            for k in range(1, lv.src.shape[0]):  # in order: the same sum in any batch
                acc += terms[k]
            acc += lv.bias
            out = values[lv.start : lv.stop]
            np.abs(acc, out=out)
            out += 1.0
            np.divide(acc, out, out=out)  # softsign: z / (1 + |z|)

    def actions(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """Argmax output per (game, genome), first on ties: shape ``(games, genomes)``."""
        if self.outputs.shape[1] == 2:  # the common two-action case, without argmax
            first, other = values[self.outputs[:, 0]], values[self.outputs[:, 1]]
            # argmax picks a NaN first: so 1 when only the second is NaN, 0 when the first is.
            second = ~(other <= first) & (first == first)
            return np.ascontiguousarray(second.T, dtype=np.int64)
        return np.ascontiguousarray(np.argmax(values[self.outputs], axis=1).T, dtype=np.int64)


class BatchPlan:
    """Every genome of a batch as flat node and edge tables, levels included.

    Built once per batch with array operations only (no per-genome Python), so that laying
    the batch out again for a subset of its genomes (:meth:`compile`, after finished genomes
    are dropped) costs a few array operations too.

    ``recurrent``: every node is put on level 1, so one activation reads every node's
    value from the previous step (see ``neat.recurrent``); cycles are then allowed.
    """

    def __init__(
        self, genomes: Sequence[Genome] | PackedGenomes, *, recurrent: bool = False
    ) -> None:
        packed = genomes if isinstance(genomes, PackedGenomes) else PackedGenomes.pack(genomes)
        self.keys = packed.keys
        self.n_genomes = len(packed)
        self.node_genome = packed.node_genome()
        self.node_id = packed.node_ids
        self.node_bias = packed.biases
        on = packed.enabled
        # Edges stay in (genome, innovation) order: a stable sort by destination then gives
        # each node its in-edges in innovation order, the order its sum is taken in.
        genome_of = packed.conn_genome()[on]
        src, dst = packed.src[on], packed.dst[on]
        self.edge_weight = packed.weight[on]
        unknown = "has a connection to an unknown node"
        self.edge_dst = packed.node_rows(genome_of, dst, unknown)
        hidden = src >= 0
        # Sources: a node-table index, or for inputs -(input index) - 1 (kept negative).
        self.edge_src = src.copy()
        self.edge_src[hidden] = packed.node_rows(genome_of[hidden], src[hidden], unknown)
        if recurrent:
            self.node_level = np.ones(self.node_id.shape[0], dtype=np.int64)
            return
        levels = longest_paths(self.node_id.shape[0], self.edge_src[hidden], self.edge_dst[hidden])
        if levels is None:
            packed.check()  # names the genome with the cycle
            raise ValueError("a cycle among enabled connections")
        self.node_level = levels

    def compile(self, alive: IntArray, n_inputs: int, n_outputs: int) -> BatchNetwork:
        """Lay out genomes ``alive`` (indices into this plan), in that order."""
        position = np.full(self.n_genomes, -1, dtype=np.int64)
        position[alive] = np.arange(alive.shape[0])
        keep = position[self.node_genome] >= 0
        nodes = np.flatnonzero(keep)
        # Slots: by level, then genome position, then node id; a level's nodes are adjacent.
        order = nodes[
            np.lexsort(
                (self.node_id[nodes], position[self.node_genome[nodes]], self.node_level[nodes])
            )
        ]
        slot = np.zeros(self.node_id.shape[0], dtype=np.int64)
        first = 1 + alive.shape[0] * n_inputs
        slot[order] = first + np.arange(order.shape[0])
        edges = np.flatnonzero(keep[self.edge_dst])
        e_src, e_dst = self.edge_src[edges], self.edge_dst[edges]
        inputs = e_src < 0
        if int(e_src.min(initial=0)) < -n_inputs:  # would read another genome's inputs
            raise ValueError(
                f"a connection starts at input {-int(e_src.min()) - 1}, "
                f"but networks have {n_inputs} inputs"
            )
        src_slot = np.where(
            inputs,
            1 + position[self.node_genome[e_dst]] * n_inputs - e_src - 1,
            slot[np.maximum(e_src, 0)],
        )
        levels = _pack_levels(
            slot[order],
            self.node_level[order],
            self.node_bias[order],
            slot[e_dst],
            src_slot,
            self.edge_weight[edges],
        )
        outputs = slot[order][self.node_id[order] < n_outputs]
        out_rows = order[self.node_id[order] < n_outputs]
        out_table = np.zeros((alive.shape[0], n_outputs), dtype=np.int64)
        out_table[position[self.node_genome[out_rows]], self.node_id[out_rows]] = outputs
        n_slots = first + order.shape[0]
        return BatchNetwork(alive.shape[0], n_inputs, n_slots, levels, out_table, slot)


def _pack_levels(
    node_slot: IntArray,
    node_level: IntArray,
    bias: FloatArray,
    edge_dst_slot: IntArray,
    edge_src_slot: IntArray,
    weight: FloatArray,
) -> tuple[Level, ...]:
    """One Level per distinct level; node slots arrive sorted, so levels are slot ranges."""
    # Stable by destination: each node's edges keep innovation order; k is the rank within.
    if node_slot.shape[0] == 0:
        return ()
    by_dst = np.argsort(edge_dst_slot, kind="stable")
    d, s, w = edge_dst_slot[by_dst], edge_src_slot[by_dst], weight[by_dst]
    starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]]) if d.shape[0] else d
    k = np.arange(d.shape[0]) - np.repeat(starts, np.diff(np.r_[starts, d.shape[0]]))
    bounds = np.flatnonzero(np.r_[True, node_level[1:] != node_level[:-1], True])
    levels = []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        start, stop = int(node_slot[lo]), int(node_slot[hi - 1]) + 1
        mine = (d >= start) & (d < stop)
        width = int(k[mine].max(initial=0)) + 1
        src = np.zeros((width, stop - start), dtype=np.int64)
        wts = np.zeros((width, stop - start), dtype=np.float64)
        src[k[mine], d[mine] - start] = s[mine]
        wts[k[mine], d[mine] - start] = w[mine]
        levels.append(Level(start, stop, src, wts[:, :, None], bias[lo:hi, None].copy()))
    return tuple(levels)


def compile_batch(genomes: Sequence[Genome], n_inputs: int, n_outputs: int) -> BatchNetwork:
    """Lay out a batch of genomes for lockstep evaluation."""
    return BatchPlan(genomes).compile(np.arange(len(genomes)), n_inputs, n_outputs)
