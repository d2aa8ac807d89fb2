"""Compatibility distance between genomes, for any set of pairs at once.

Distance (Stanley & Miikkulainen 2002, with c1 = c2 = 1, c3 = 0.4):
``δ = mismatched / N + 0.4 · W̄`` where *mismatched* counts disjoint and excess genes,
``N = max(1, n / 20)`` for the larger genome's gene count *n*, and W̄ is the mean absolute
weight difference of matching genes.  The paper sets N = 1 below 20 genes and N = n above,
a cliff: one mismatched gene weighed 1.0 at 19 genes and 0.05 at 20.  Our N is the paper's
below 20 and grows in proportion above, so the weight of a gene falls smoothly with size.

All genomes' genes are laid out once as one sorted (genome, innovation) key array
(:class:`GeneMatrix`), so the distances of any set of (genome, representative) pairs are a
handful of vectorised operations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.genome import Genome

MISMATCH_COEFF = 1.0
WEIGHT_COEFF = 0.4
SMALL_GENOME = 20  # gene count up to which a mismatched gene weighs 1.0
PAIR_CHUNK = 4096  # candidate pairs per vectorised block: bounds temporary memory
KEY_STRIDE = 1 << 40  # (genome row, innovation) → one sortable int64 key
COMMON_GENE_REPS = 32  # genes held by this many reps are counted by matrix product


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
        genes = _spans(self.offsets[rows], sizes)
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
            gene = _spans(table.offsets[j], n_rep)
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

        Shared-gene counts for all pairs (:func:`_shared_counts`) bound the distance from
        below, so exact weight terms are computed only for pairs the bound leaves within
        the threshold.
        """
        if not reps or rows.shape[0] == 0:
            none = np.empty(0, dtype=np.int64)
            return none, none, np.empty(0)
        table = RepGenes(reps)
        innov, owner = self.genes_of(rows)
        r_owner = np.repeat(np.arange(len(reps)), table.sizes)
        # float32 throughout: gene counts are small integers, exact in float32, and the
        # test is a conservative prefilter (the exact distance decides below).
        matching = _shared_counts(innov, owner, rows.shape[0], table.innov, r_owner, len(reps))
        sizes = self.sizes[rows, None].astype(np.float32)
        r_sizes = table.sizes[None, :].astype(np.float32)
        norm = np.maximum(np.float32(1.0), np.maximum(sizes, r_sizes) / np.float32(SMALL_GENOME))
        mismatched = (sizes + r_sizes) - 2.0 * matching
        ci, cj = np.nonzero(MISMATCH_COEFF * mismatched <= (threshold * (1 + 1e-6)) * norm)
        dist = self.pair_distances(rows[ci], table, cj)
        ok = dist < threshold
        return ci[ok], cj[ok], dist[ok]


def _shared_counts(
    g_innov: NDArray[np.int64],
    g_owner: NDArray[np.int64],
    n_g: int,
    r_innov: NDArray[np.int64],
    r_owner: NDArray[np.int64],
    n_r: int,
) -> NDArray[np.float32]:
    """How many genes each (genome, rep) pair shares, as an (n_g × n_r) matrix.

    Genes most reps hold (the first genes of the run, which every genome keeps) are
    counted by one matrix product over them alone; every other gene is rare, held by a
    few genomes and reps, and counted by joining the two gene lists on innovation.  A
    matrix product over all innovations would cost genomes × reps × innovations, mostly
    zeros, thousands of innovations late in a big run.
    """
    cols, held = np.unique(r_innov, return_counts=True)
    common = np.intersect1d(cols[held >= COMMON_GENE_REPS], g_innov)
    shared = _presence(g_innov, g_owner, n_g, common) @ _presence(r_innov, r_owner, n_r, common).T
    g_rare, r_rare = ~np.isin(g_innov, common), ~np.isin(r_innov, common)
    order = np.argsort(r_innov[r_rare], kind="stable")
    r_sorted, r_who = r_innov[r_rare][order], r_owner[r_rare][order]
    g_in, g_who = g_innov[g_rare], g_owner[g_rare]
    lo = np.searchsorted(r_sorted, g_in, "left")
    hits = np.searchsorted(r_sorted, g_in, "right") - lo  # reps holding each genome gene
    if hits.any():
        pair = np.repeat(g_who, hits) * n_r + r_who[_spans(lo, hits)]
        shared += np.bincount(pair, minlength=n_g * n_r).reshape(n_g, n_r).astype(np.float32)
    return shared


def _spans(starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """The indices ``starts[i], …, starts[i] + lengths[i] - 1`` for every i, end to end."""
    firsts = np.cumsum(lengths) - lengths
    return np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()))


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


def distance(a: Genome, b: Genome) -> float:
    """Compatibility distance between two genomes."""
    return float(GeneMatrix([a]).distances(b, np.zeros(1, dtype=np.int64))[0])
