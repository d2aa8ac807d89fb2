"""Mutation operators: structural changes one genome at a time, weights for a whole brood at once.

Structural events are rare, so a Python loop over the few genomes they hit is cheap; weight
mutation touches most connections, so it runs as one vectorised pass over all children.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.genome import WEIGHT_INIT_STD, Genome, frozen

WEIGHT_PERTURB_STD = 0.5
WEIGHT_LIMIT = 30.0
ADD_CONNECTION_ATTEMPTS = 8


@dataclass
class InnovationTracker:
    """Hands out innovation numbers and node ids for one generation.

    The same structural change made twice in one generation gets the same numbers, so
    genomes that evolved the same gene independently still align in crossover and distance.
    A tracker lives for one reproduction step; only its counters persist in the population.
    """

    next_innov: int
    next_node: int

    def __post_init__(self) -> None:
        self._connections: dict[tuple[int, int], int] = {}
        self._splits: dict[int, tuple[int, int, int]] = {}

    def connection(self, src: int, dst: int) -> int:
        """The innovation number for a new connection ``src → dst``."""
        innov = self._connections.get((src, dst))
        if innov is None:
            innov = self._connections[(src, dst)] = self.next_innov
            self.next_innov += 1
        return innov

    def split(self, innov: int) -> tuple[int, int, int]:
        """``(new node, innovation in, innovation out)`` for splitting connection ``innov``."""
        found = self._splits.get(innov)
        if found is None:
            found = (self.next_node, self.next_innov, self.next_innov + 1)
            self._splits[innov] = found
            self.next_node += 1
            self.next_innov += 2
        return found


@dataclass(frozen=True)
class StructuralRates:
    """Per-child probabilities of each structural mutation."""

    add_connection: float
    add_node: float
    activate: float
    remove: float
    recurrent: bool = False  # add-connection may close cycles (config key ``recurrent``)
    weight_std: float = WEIGHT_INIT_STD  # a new connection's weight ~ N(0, weight_std)


def mutate_structure(
    genome: Genome,
    rates: StructuralRates,
    n_in: int,
    rng: np.random.Generator,
    tracker: InnovationTracker,
    draws: Sequence[float] | None = None,
) -> Genome:
    """Apply each structural mutation at most once, each with its own probability.

    ``draws`` (four uniforms) may be pre-drawn in bulk by the caller; they decide which
    mutations happen, in the order add node, add connection, activate, remove.
    """
    roll = rng.random(4).tolist() if draws is None else draws
    if roll[0] < rates.add_node:
        genome = add_node(genome, rng, tracker)
    if roll[1] < rates.add_connection:
        genome = add_connection(
            genome, n_in, rng, tracker, recurrent=rates.recurrent, weight_std=rates.weight_std
        )
    if roll[2] < rates.activate:
        genome = toggle_connection(genome, rng, enable=True)
    if roll[3] < rates.remove:
        genome = toggle_connection(genome, rng, enable=False)
    return genome


def _push(column: NDArray[Any], *values: Any) -> NDArray[Any]:
    """A read-only copy of ``column`` with ``values`` appended (cheaper than np.append)."""
    n = column.shape[0]
    out = np.empty(n + len(values), dtype=column.dtype)
    out[:n] = column
    for i, value in enumerate(values):  # item by item: cheaper than a slice from a tuple
        out[n + i] = value
    return frozen(out)


def add_node(genome: Genome, rng: np.random.Generator, tracker: InnovationTracker) -> Genome:
    """Split a random enabled connection ``a → b`` into ``a → new → b``.

    The incoming link gets weight 1 and the outgoing one the old weight, so the network
    behaves almost as before and the new node has time to prove itself.
    """
    candidates = genome.enabled.nonzero()[0]
    if candidates.shape[0] == 0:
        return genome
    idx = int(candidates[rng.integers(candidates.shape[0])])
    node, innov_in, innov_out = tracker.split(int(genome.innov[idx]))
    if node in genome.node_ids:  # already split this generation via the same parent gene
        return genome
    enabled = genome.enabled.copy()
    enabled[idx] = False
    a, b = int(genome.src[idx]), int(genome.dst[idx])
    # The new node and innovations are newer than anything the genome has, so appending
    # keeps both orders without a sort.
    return Genome(
        genome.key,
        _push(genome.node_ids, node),
        _push(genome.biases, 0.0),
        _push(genome.innov, innov_in, innov_out),
        _push(genome.src, a, node),
        _push(genome.dst, node, b),
        _push(genome.weight, 1.0, float(genome.weight[idx])),
        _push(enabled, True, True),
    )


def reaches(children: dict[int, list[int]], start: int, target: int) -> bool:
    """True when ``target`` is reachable from ``start`` in the adjacency map."""
    frontier, seen = [start], {start}
    while frontier:
        node = frontier.pop()
        if node == target:
            return True
        for nxt in children.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


def add_connection(
    genome: Genome,
    n_in: int,
    rng: np.random.Generator,
    tracker: InnovationTracker,
    *,
    recurrent: bool = False,
    weight_std: float = WEIGHT_INIT_STD,
) -> Genome:
    """Connect a random source (input or hidden) to a random target (hidden or output); the
    new weight is drawn from N(0, ``weight_std``).

    Pairs that already exist or would close a cycle are redrawn a few times; a genome with
    no free pair is returned unchanged.  With ``recurrent``, cycles and self-loops are
    allowed (the same draws, so only the accepted pairs differ).
    """
    src, dst = genome.src.tolist(), genome.dst.tolist()
    nodes = genome.node_ids.tolist()
    existing = set(zip(src, dst, strict=True))
    children: dict[int, list[int]] | None = None  # built only if a pair needs a cycle check
    # Plain floats: the same products and truncations as the array form, without numpy
    # overhead on eight pairs.
    draws = rng.random((ADD_CONNECTION_ATTEMPTS, 2)).tolist()
    n_src, n_dst = n_in + len(nodes), len(nodes)
    for s_draw, d_draw in draws:
        s_idx, d_idx = int(s_draw * n_src), int(d_draw * n_dst)
        a = -(s_idx + 1) if s_idx < n_in else nodes[s_idx - n_in]
        b = nodes[d_idx]
        if (a == b and not recurrent) or (a, b) in existing:
            continue
        if a >= 0 and not recurrent:  # an input can never close a cycle
            if children is None:
                children = {}
                for x, y in zip(src, dst, strict=True):
                    children.setdefault(x, []).append(y)
            if reaches(children, b, a):
                continue
        innov = tracker.connection(a, b)
        return _with_connection(genome, innov, a, b, float(rng.normal(0.0, weight_std)))
    return genome


def _with_connection(genome: Genome, innov: int, a: int, b: int, weight: float) -> Genome:
    """``genome`` plus the enabled connection ``a → b`` numbered ``innov``."""
    if innov > int(genome.innov[-1]):  # the usual case: stays sorted without a sort
        return Genome(
            genome.key,
            genome.node_ids,
            genome.biases,
            _push(genome.innov, innov),
            _push(genome.src, a),
            _push(genome.dst, b),
            _push(genome.weight, weight),
            _push(genome.enabled, True),
        )
    return Genome.build(
        genome.key,
        genome.node_ids,
        genome.biases,
        np.append(genome.innov, innov),
        np.append(genome.src, a),
        np.append(genome.dst, b),
        np.append(genome.weight, weight),
        np.append(genome.enabled, True),
    )


def toggle_connection(genome: Genome, rng: np.random.Generator, *, enable: bool) -> Genome:
    """Enable a random disabled connection, or disable a random enabled one."""
    if enable and genome.enabled.all():  # the common case: nothing to re-enable
        return genome
    candidates = (genome.enabled != enable).nonzero()[0]
    if candidates.shape[0] == 0:
        return genome
    enabled = genome.enabled.copy()
    enabled[candidates[rng.integers(candidates.shape[0])]] = enable
    return genome.with_enabled(enabled)


def mutate_weights(
    genomes: list[Genome],
    rate: float,
    replace_rate: float,
    rng: np.random.Generator,
    first_key: int | None = None,
    *,
    init_std: float = WEIGHT_INIT_STD,
    power: float = WEIGHT_PERTURB_STD,
) -> list[Genome]:
    """Mutate every weight and bias of every genome in one vectorised pass.

    Each value changes with probability ``rate``; a changing value is replaced by a fresh
    normal(0, ``init_std``) draw with probability ``replace_rate``, else nudged by
    normal(0, ``power``).  With ``first_key`` the results are keyed ``first_key, …``.
    """
    if not genomes:
        return []
    w_sizes = [g.weight.shape[0] for g in genomes]
    b_sizes = [g.biases.shape[0] for g in genomes]
    values = np.concatenate([g.weight for g in genomes] + [g.biases for g in genomes])
    n = values.shape[0]
    change = rng.random(n) < rate
    replace = rng.random(n) < replace_rate
    noise = rng.normal(0.0, 1.0, n)
    fresh = noise * init_std
    nudged = values + noise * power
    values = np.where(change, np.where(replace, fresh, nudged), values)
    np.clip(values, -WEIGHT_LIMIT, WEIGHT_LIMIT, out=values)
    values.flags.writeable = False  # the slices below share this buffer, read-only too
    ends = np.cumsum(w_sizes + b_sizes).tolist()
    starts = [0, *ends[:-1]]
    k = len(genomes)
    keys = [g.key for g in genomes] if first_key is None else range(first_key, first_key + k)
    # Built directly rather than via with_weights: slices of a read-only buffer are read-only.
    return [
        Genome(
            key,
            g.node_ids,
            values[starts[k + i] : ends[k + i]],
            g.innov,
            g.src,
            g.dst,
            values[starts[i] : ends[i]],
            g.enabled,
        )
        for i, (key, g) in enumerate(zip(keys, genomes, strict=True))
    ]
