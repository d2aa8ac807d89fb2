"""Speciation: group genomes by compatibility distance against ``species_threshold``.

Distance (Stanley & Miikkulainen 2002, with c1 = c2 = 1, c3 = 0.4):
``δ = mismatched / N + 0.4 · W̄`` where *mismatched* counts disjoint and excess genes,
``N = max(1, n / 20)`` for the larger genome's gene count *n*, and W̄ is the mean absolute
weight difference of matching genes.  The paper sets N = 1 below 20 genes and N = n above,
a cliff: one mismatched gene weighed 1.0 at 19 genes and 0.05 at 20.  Our N is the paper's
below 20 and grows in proportion above, so the weight of a gene falls smoothly with size.
The spec's example threshold 3 is the paper's δ_t = 3.0.

With ``target_species`` set, the threshold adapts each generation (:func:`adapt_threshold`)
and, while there are more species than the target, the closest species merge
(:func:`merge_closest`): species are kept by lineage, so a higher threshold alone stops new
ones from forming but never lets existing ones go.

All genomes' genes are laid out once as one sorted (genome, innovation) key array
(:class:`GeneMatrix`), so the distances of any set of (genome, representative) pairs are a
handful of vectorised operations; new species are founded a block of candidates at a time
(:func:`_founded`), with the same result as one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.genome import Genome

MISMATCH_COEFF = 1.0
WEIGHT_COEFF = 0.4
SMALL_GENOME = 20  # gene count up to which a mismatched gene weighs 1.0
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


PAIR_CHUNK = 4096  # candidate pairs per vectorised block: bounds temporary memory
KEY_STRIDE = 1 << 40  # (genome row, innovation) → one sortable int64 key
FOUNDING_BLOCK_MAX = 256  # candidate founders per distance pass (see _founded)


class GeneMatrix:
    """Every genome's connection genes as one sorted (row, innovation) key array.

    Looking up any set of genes for any set of genomes is one ``searchsorted``, so memory
    stays proportional to the genes that exist, however many innovations a run invents.
    """

    def __init__(self, genomes: Sequence[Genome]) -> None:
        sizes = np.fromiter((g.innov.shape[0] for g in genomes), np.int64, len(genomes))
        rows = np.repeat(np.arange(len(genomes), dtype=np.int64), sizes)
        # Rows ascend and each genome's innovations ascend, so the keys come out sorted.
        self.innov = np.concatenate([g.innov for g in genomes])
        self.keys = rows * KEY_STRIDE + self.innov
        self.weights = np.concatenate([g.weight for g in genomes])
        self.sizes = sizes
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    def genes_of(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The innovations of every gene of ``rows``, end to end, and each gene's index
        into ``rows``."""
        sizes = self.sizes[rows]
        starts = np.repeat(self.offsets[rows] - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
        genes = starts + np.arange(int(sizes.sum()))
        return self.innov[genes], np.repeat(np.arange(rows.shape[0]), sizes)

    def distances(self, rep: Genome, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        """Distance from each genome of ``rows`` to ``rep``."""
        return self.pair_distances(rows, [rep], np.zeros(rows.shape[0], dtype=np.int64))

    def pair_distances(
        self,
        gen_rows: NDArray[np.int64],
        reps: Sequence[Genome] | RepGenes,
        rep_idx: NDArray[np.int64],
    ) -> NDArray[np.float64]:
        """Distance for each (genome row, rep) pair, looking up only each rep's own genes
        (a handful per pair) in one vectorised pass over all pairs."""
        out = np.empty(gen_rows.shape[0])
        if gen_rows.shape[0] == 0:
            return out
        table = reps if isinstance(reps, RepGenes) else RepGenes(reps)
        for lo in range(0, gen_rows.shape[0], PAIR_CHUNK):
            g, j = gen_rows[lo : lo + PAIR_CHUNK], rep_idx[lo : lo + PAIR_CHUNK]
            # Ragged, not padded: every pair's rep genes end to end, summed with bincount
            # (in gene order, so a distance never depends on its companions).
            n_rep = table.sizes[j]
            pair = np.repeat(np.arange(g.shape[0]), n_rep)
            firsts = np.cumsum(n_rep) - n_rep
            gene = np.repeat(table.offsets[j] - firsts, n_rep) + np.arange(pair.shape[0])
            query = g[pair] * KEY_STRIDE + table.innov[gene]
            pos = np.minimum(np.searchsorted(self.keys, query), self.keys.shape[0] - 1)
            shared = self.keys[pos] == query
            matching = np.bincount(pair, weights=shared, minlength=g.shape[0])
            diff = np.abs(self.weights[pos] - table.weight[gene]) * shared
            wsum = np.bincount(pair, weights=diff, minlength=g.shape[0])
            sizes = self.sizes[g]
            norm = np.maximum(1.0, np.maximum(sizes, n_rep) / SMALL_GENOME)
            out[lo : lo + PAIR_CHUNK] = MISMATCH_COEFF * (
                sizes + n_rep - 2 * matching
            ) / norm + WEIGHT_COEFF * (wsum / np.maximum(matching, 1))
        return out

    def nearest(
        self, reps: Sequence[Genome], threshold: float, rows: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """For each genome of ``rows``: the nearest rep within ``threshold`` and its distance
        (``-1`` / ``inf`` when none is that close)."""
        best = np.full(rows.shape[0], -1, dtype=np.int64)
        best_d = np.full(rows.shape[0], np.inf)
        ci, cj, dist = self.close_pairs(reps, threshold, rows)
        order = np.lexsort((cj, dist, ci))  # per genome: smallest distance, then first rep
        pick = order[np.unique(ci[order], return_index=True)[1]]
        best[ci[pick]] = cj[pick]
        best_d[ci[pick]] = dist[pick]
        return best, best_d

    def close_pairs(
        self, reps: Sequence[Genome], threshold: float, rows: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """Every (genome of ``rows``, rep) pair closer than ``threshold``: its index into
        ``rows``, its index into ``reps`` and its distance, each pair's exactly as
        :meth:`pair_distances` gives it.

        Gene counts for all pairs come from one matrix product over the reps' genes; they
        bound the distance from below, so exact weight terms are computed only for pairs
        the bound leaves within the threshold.
        """
        if not reps or rows.shape[0] == 0:
            none = np.empty(0, dtype=np.int64)
            return none, none, np.empty(0)
        table = RepGenes(reps)
        innov, owner = self.genes_of(rows)
        # Only genes both sides have can match: late in a run the reps hold thousands of
        # innovations the genomes looked up do not, and the matrices would be mostly zeros.
        cols = np.intersect1d(table.innov, innov)
        g_present = _presence(innov, owner, rows.shape[0], cols)
        r_owner = np.repeat(np.arange(len(reps)), table.sizes)
        r_present = _presence(table.innov, r_owner, len(reps), cols)
        # float32 throughout: gene counts are small integers, exact in float32, and the
        # test is a conservative prefilter (the exact distance decides below).
        matching = g_present @ r_present.T
        sizes = self.sizes[rows, None].astype(np.float32)
        r_sizes = table.sizes[None, :].astype(np.float32)
        norm = np.maximum(np.float32(1.0), np.maximum(sizes, r_sizes) / np.float32(SMALL_GENOME))
        mismatched = (sizes + r_sizes) - 2.0 * matching
        ci, cj = np.nonzero(MISMATCH_COEFF * mismatched <= (threshold * (1 + 1e-6)) * norm)
        dist = self.pair_distances(rows[ci], table, cj)
        ok = dist < threshold
        return ci[ok], cj[ok], dist[ok]


def _presence(
    innov: NDArray[np.int64], owner: NDArray[np.int64], n: int, cols: NDArray[np.int64]
) -> NDArray[np.float32]:
    """An (n × cols) 0/1 matrix: 1 where row ``owner[i]`` has gene ``innov[i]``; genes not
    among ``cols`` (sorted) are left out."""
    present = np.zeros((n, cols.shape[0]), dtype=np.float32)
    if cols.shape[0] == 0:
        return present
    col = np.minimum(np.searchsorted(cols, innov), cols.shape[0] - 1)
    hit = cols[col] == innov
    present[owner[hit], col[hit]] = 1.0
    return present


class RepGenes:
    """Representatives' genes end to end, with each rep's offset and size."""

    def __init__(self, reps: Sequence[Genome]) -> None:
        self.sizes = np.fromiter((r.innov.shape[0] for r in reps), np.int64, len(reps))
        self.offsets = np.cumsum(self.sizes) - self.sizes
        self.innov = np.concatenate([r.innov for r in reps])
        self.weight = np.concatenate([r.weight for r in reps])


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


def distance(a: Genome, b: Genome) -> float:
    """Compatibility distance between two genomes."""
    return float(GeneMatrix([a]).distances(b, np.zeros(1, dtype=np.int64))[0])


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
