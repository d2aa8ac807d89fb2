"""Speciation: group genomes by compatibility distance (``neat.distance``) against
``species_threshold``; the spec's example threshold 3 is the paper's δ_t = 3.0.

With ``target_species`` set, the threshold adapts each generation (:func:`adapt_threshold`)
and, while there are more species than the target, the closest species merge
(:func:`merge_closest`): species are kept by lineage, so a higher threshold alone stops new
ones from forming but never lets existing ones go.

New species are founded a block of candidates at a time (:func:`_founded`), with the same
result as one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.distance import GeneMatrix
from ezspark_common.neat.genome import Genome

THRESHOLD_STEP = 1.1  # factor per generation when adapting to target_species
THRESHOLD_MIN, THRESHOLD_MAX = 1e-3, 1e9


@dataclass(frozen=True)
class Species:
    """A species' bookkeeping; members are genome keys in population order."""

    id: int
    representative: Genome
    members: tuple[int, ...]
    created: int
    best_fitness: float
    last_improved: int

    def age(self, generation: int) -> int:
        """Generations this species has existed, counting the current one (>= 1)."""
        return generation - self.created + 1

    def stale(self, generation: int) -> int:
        """Generations since this species last improved its best fitness."""
        return generation - self.last_improved


FOUNDING_BLOCK_MAX = 256  # candidate founders per distance pass (see _founded)


def adapt_threshold(threshold: float, species: int, target: int | None) -> float:
    """The next generation's threshold: raised when there are more species than ``target``,
    lowered when fewer (``None`` keeps it fixed)."""
    if target is None or species == target:
        return threshold
    step = THRESHOLD_STEP if species > target else 1.0 / THRESHOLD_STEP
    return min(THRESHOLD_MAX, max(THRESHOLD_MIN, threshold * step))


def merge_closest(
    previous: Sequence[Species], threshold: float, target: int
) -> tuple[tuple[Species, ...], dict[int, int]]:
    """Merge species until at most ``target`` are left, closest representatives first, and
    only pairs closer than ``threshold``.  Returns the species left and, for every merged
    species id, the id of the older species that took it in (its members' new lineage).

    Merging is single linkage over representatives (a chain of close pairs becomes one
    species).  The absorbing species keeps its representative and age; its record is the
    best of the group's (best fitness, last improvement), so stagnation does not strike a
    species for a merge.
    """
    n = len(previous)
    if n <= target:
        return tuple(previous), {}
    reps = [s.representative for s in previous]
    i, j = np.triu_indices(n, 1)
    dist = GeneMatrix(reps).pair_distances(i, reps, j)
    root = list(range(n))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    groups = n
    for p in np.lexsort((j, i, dist)).tolist():  # closest first; ties in index order
        if groups <= target or dist[p] >= threshold:
            break
        a, b = find(int(i[p])), find(int(j[p]))
        if a != b:
            root[max(a, b)] = min(a, b)  # the earlier (older) species absorbs
            groups -= 1
    return _merged(previous, [find(x) for x in range(n)])


def _merged(
    previous: Sequence[Species], roots: list[int]
) -> tuple[tuple[Species, ...], dict[int, int]]:
    """The species left after merging each species into ``previous[roots[i]]``."""
    groups: dict[int, list[Species]] = {}  # root index → its group, in species order
    for s, r in zip(previous, roots, strict=True):
        groups.setdefault(r, []).append(s)
    kept = tuple(
        Species(
            previous[r].id,
            previous[r].representative,
            tuple(k for t in group for k in t.members),
            previous[r].created,
            max(t.best_fitness for t in group),
            max(t.last_improved for t in group),
        )
        for r, group in groups.items()
    )
    moved = {
        s.id: previous[r].id for s, r in zip(previous, roots, strict=True) if s.id != previous[r].id
    }
    return kept, moved


def _assign(
    matrix: GeneMatrix,
    previous: Sequence[Species],
    threshold: float,
    hints: Sequence[int | None],
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Previous-species index per genome (-1 = none) and the distance to its rep.

    A genome first tries the species it was bred in (its hint); only the rest search
    every species.  Keeping lineage is both what NEAT intends and what keeps this cheap.
    """
    n = matrix.sizes.shape[0]
    assign = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf)
    index_of = {s.id: i for i, s in enumerate(previous)}
    hinted = np.array([index_of.get(h, -1) if h is not None else -1 for h in hints], dtype=np.int64)
    rows = np.flatnonzero(hinted >= 0)
    if rows.shape[0]:
        d = matrix.pair_distances(rows, [s.representative for s in previous], hinted[rows])
        ok = d < threshold
        assign[rows[ok]], dist[rows[ok]] = hinted[rows[ok]], d[ok]
    rest = np.flatnonzero(assign < 0)
    found, d = matrix.nearest([s.representative for s in previous], threshold, rest)
    assign[rest], dist[rest] = found, d
    return assign, dist


def speciate(
    genomes: Sequence[Genome],
    previous: Sequence[Species],
    threshold: float,
    generation: int,
    next_species_id: int,
    hints: Sequence[int | None] | None = None,
    target: int | None = None,
) -> tuple[tuple[Species, ...], int]:
    """Assign genomes to species; returns the living species and the next free species id.

    A genome joins the nearest previous species whose representative is within the
    threshold, trying first the species it was bred in (``hints``: a species id per genome);
    the rest found new species in population order.  A surviving species' new
    representative is its member closest to the old one.  With ``target``, previous species
    beyond it are first merged (:func:`merge_closest`) and their genomes' hints follow.
    """
    if target is not None and len(previous) > target:
        previous, moved = merge_closest(previous, threshold, target)
        hints = [moved.get(h, h) if h is not None else None for h in hints or ()] or None
    matrix = GeneMatrix(genomes)
    assign, dist = _assign(matrix, previous, threshold, hints or [None] * len(genomes))
    species: list[Species] = []
    keys = [g.key for g in genomes]
    # One sort groups every species' members (in population order) instead of a scan each.
    by_species = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[by_species], np.arange(len(previous) + 1)).tolist()
    # Sorted by species, then distance, then row: each species' first is its new rep.
    nearest_first = np.lexsort((np.arange(assign.shape[0]), dist, assign)).tolist()
    for s_idx, old in enumerate(previous):
        rows = by_species[bounds[s_idx] : bounds[s_idx + 1]]
        if rows.shape[0] == 0:
            continue  # extinct
        rep = genomes[nearest_first[bounds[s_idx]]]
        members = tuple(keys[r] for r in rows.tolist())
        species.append(
            Species(old.id, rep, members, old.created, old.best_fitness, old.last_improved)
        )
    for group in _founded(matrix, genomes, np.flatnonzero(assign < 0), threshold):
        founder = genomes[group[0]]
        members = tuple(keys[r] for r in group)
        species.append(
            Species(next_species_id, founder, members, generation, float("-inf"), generation)
        )
        next_species_id += 1
    return tuple(species), next_species_id


def _founded(
    matrix: GeneMatrix, genomes: Sequence[Genome], unassigned: NDArray[np.int64], threshold: float
) -> Iterator[list[int]]:
    """New species' rows, founder first: the first genome left founds a species with every
    genome left within the threshold of it, until none is left.

    Late in a run most unassigned genomes are loners, one new species each, and one
    distance pass per founder cost more than the distances themselves.  So the next few
    genomes left are tried as founders in one pass, in a block that doubles while at least
    half of a block founds species and halves when fewer do (one founder took many): at
    most about twice the distances the one-by-one loop computes, in far fewer passes.
    """
    left, block = unassigned, 1
    while left.shape[0]:
        tried = [genomes[r] for r in left[:block].tolist()]
        ci, cj, _ = matrix.close_pairs(tried, threshold, left)
        order = np.lexsort((ci, cj))  # by candidate, then position in ``left``
        ci, cj = ci[order], cj[order]
        bounds = np.searchsorted(cj, np.arange(len(tried) + 1)).tolist()
        taken = np.zeros(left.shape[0], dtype=np.bool_)
        founded = 0
        for j in range(len(tried)):
            if taken[j]:
                continue
            # Every position before j is taken by now, so the rest of j's near genomes
            # still free are exactly those the one-by-one loop would find.
            near = ci[bounds[j] : bounds[j + 1]]
            near = near[(near != j) & ~taken[near]]
            taken[j] = True
            taken[near] = True
            founded += 1
            yield [int(left[j]), *left[near].tolist()]
        left = left[~taken]
        grow = 2 * founded >= len(tried)
        block = min(FOUNDING_BLOCK_MAX, block * 2) if grow else max(1, block // 2)
