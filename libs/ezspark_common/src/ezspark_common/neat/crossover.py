"""Crossover, as the NEAT paper breeds children (Stanley & Miikkulainen 2002), many at once.

- Matching genes (same innovation number) take either parent's weight with probability ½;
  node biases likewise.
- Disjoint and excess genes come from the fitter parent.  With equal fitness the paper
  inherits them at random from both: the child keeps the first parent's genes and takes
  each of the other's disjoint and excess genes with probability ½, skipping any that would
  close a cycle (the graph of all connections stays acyclic).
- A gene disabled in either parent is disabled in the child with probability 0.75, else
  enabled.

The usual case (one fitter parent) is one vectorised pass over every child's genes, so a
brood of thousands costs about as much as a few array operations plus one object per child.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.genome import Genome, frozen, has_cycle

DISABLED_STAYS = 0.75  # the paper's chance that a gene disabled in a parent stays disabled
KEY_STRIDE = 1 << 40  # (pair, innovation or node id) → one sortable int64 key


def crossover(fitter: Genome, other: Genome, key: int, rng: np.random.Generator) -> Genome:
    """One child with ``fitter``'s structure (see the module docstring)."""
    return cross_many([(fitter, other, False)], [key], rng)[0]


def cross_many(
    pairs: Sequence[tuple[Genome, Genome, bool]], keys: Sequence[int], rng: np.random.Generator
) -> list[Genome]:
    """Children of ``(first, second, equal_fitness)`` pairs; ``first`` is the fitter parent,
    or either when ``equal_fitness`` (then the second's extra genes may come along too)."""
    if not pairs:
        return []
    firsts = [a for a, _, _ in pairs]
    seconds = [b for _, b, _ in pairs]
    weight, enabled, w_ends = _genes(firsts, seconds, rng)
    biases, b_ends = _biases(firsts, seconds, rng)
    children = []
    w_lo = b_lo = 0
    for i, a in enumerate(firsts):
        w_hi, b_hi = w_ends[i], b_ends[i]
        child = Genome(
            keys[i],
            a.node_ids,
            biases[b_lo:b_hi],
            a.innov,
            a.src,
            a.dst,
            weight[w_lo:w_hi],
            enabled[w_lo:w_hi],
        )
        if pairs[i][2]:
            child = _add_extra_genes(child, seconds[i], rng)
        children.append(child)
        w_lo, b_lo = w_hi, b_hi
    return children


def _lookup(
    ids_a: Sequence[NDArray[np.int64]], ids_b: Sequence[NDArray[np.int64]]
) -> tuple[NDArray[np.int64], NDArray[np.bool_], NDArray[np.int64]]:
    """For every id of every ``a`` (concatenated): its position among the concatenated ids
    of the same pair's ``b``, whether it is there, and each pair's end offset in ``a``."""
    a_sizes = np.fromiter((x.shape[0] for x in ids_a), np.int64, len(ids_a))
    b_sizes = np.fromiter((x.shape[0] for x in ids_b), np.int64, len(ids_b))
    rows = np.arange(len(ids_a), dtype=np.int64)
    # Ids are sorted within each genome and rows ascend, so both key arrays are sorted.
    query = np.repeat(rows, a_sizes) * KEY_STRIDE + np.concatenate(ids_a)
    table = np.repeat(rows, b_sizes) * KEY_STRIDE + np.concatenate(ids_b)
    if table.shape[0] == 0:
        pos = np.zeros(query.shape[0], dtype=np.int64)
        return pos, np.zeros(query.shape[0], dtype=np.bool_), np.cumsum(a_sizes)
    pos = np.minimum(np.searchsorted(table, query), table.shape[0] - 1)
    return pos, table[pos] == query, np.cumsum(a_sizes)


def _genes(
    firsts: list[Genome], seconds: list[Genome], rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.bool_], list[int]]:
    """Weights and enabled flags of every child, end to end, and each child's end offset."""
    pos, match, ends = _lookup([g.innov for g in firsts], [g.innov for g in seconds])
    a_w = np.concatenate([g.weight for g in firsts])
    a_en = np.concatenate([g.enabled for g in firsts])
    b_w = _padded(np.concatenate([g.weight for g in seconds]), 0.0)
    b_en = _padded(np.concatenate([g.enabled for g in seconds]), True)
    take = match & (rng.random(a_w.shape[0]) < 0.5)
    weight = np.where(take, b_w[pos], a_w)
    off_somewhere = ~a_en | (match & ~b_en[pos])
    enabled = ~(off_somewhere & (rng.random(a_w.shape[0]) < DISABLED_STAYS))
    return frozen(weight), frozen(enabled), ends.tolist()


def _biases(
    firsts: list[Genome], seconds: list[Genome], rng: np.random.Generator
) -> tuple[NDArray[np.float64], list[int]]:
    """Node biases of every child (matching nodes from either parent), and end offsets."""
    pos, match, ends = _lookup([g.node_ids for g in firsts], [g.node_ids for g in seconds])
    a_b = np.concatenate([g.biases for g in firsts])
    b_b = _padded(np.concatenate([g.biases for g in seconds]), 0.0)
    take = match & (rng.random(a_b.shape[0]) < 0.5)
    return frozen(np.where(take, b_b[pos], a_b)), ends.tolist()


def _padded(column: NDArray[Any], fill: Any) -> NDArray[Any]:
    """``column``, or one ``fill`` value when empty (positions of misses point at 0)."""
    return column if column.shape[0] else np.full(1, fill, dtype=column.dtype)


def _add_extra_genes(child: Genome, other: Genome, rng: np.random.Generator) -> Genome:
    """Equal fitness: add each of ``other``'s genes the child lacks with probability ½
    (with the nodes they need), unless it would close a cycle."""
    extra = np.flatnonzero(~np.isin(other.innov, child.innov))
    if extra.shape[0] == 0:
        return child
    extra = extra[rng.random(extra.shape[0]) < 0.5]
    stays_off = rng.random(extra.shape[0]) < DISABLED_STAYS
    src, dst = child.src.copy(), child.dst.copy()
    kept: list[int] = []
    for j, idx in enumerate(extra.tolist()):
        trial_src = np.append(src, other.src[idx])
        trial_dst = np.append(dst, other.dst[idx])
        if has_cycle(trial_src, trial_dst):
            continue
        src, dst = trial_src, trial_dst
        kept.append(j)
    if not kept:
        return child
    take = extra[kept]
    enabled = other.enabled[take] | ~stays_off[kept]
    new_nodes = np.setdiff1d(np.union1d(other.src[take], other.dst[take]), child.node_ids)
    new_nodes = new_nodes[new_nodes >= 0]  # inputs are implicit
    node_bias = other.biases[np.searchsorted(other.node_ids, new_nodes)]
    return Genome.build(
        child.key,
        np.concatenate([child.node_ids, new_nodes]),
        np.concatenate([child.biases, node_bias]),
        np.concatenate([child.innov, other.innov[take]]),
        src,
        dst,
        np.concatenate([child.weight, other.weight[take]]),
        np.concatenate([child.enabled, enabled]),
    )
