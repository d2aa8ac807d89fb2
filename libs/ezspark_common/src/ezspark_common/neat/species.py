"""Speciation: group genomes by compatibility distance against ``species_threshold``.

Distance (Stanley & Miikkulainen 2002, with c1 = c2 = 1, c3 = 0.4):
``δ = mismatched / N + 0.4 · W̄`` where *mismatched* counts disjoint and excess genes,
*N* is the larger genome's gene count (1 when both have fewer than 20 genes), and W̄ is
the mean absolute weight difference of matching genes.  The spec's example threshold 3
is the paper's δ_t = 3.0.

All genomes are laid out once as a dense (genomes × innovations) matrix, so the distance
from every genome to a representative is a handful of vectorised operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.genome import Genome

MISMATCH_COEFF = 1.0
WEIGHT_COEFF = 0.4
SMALL_GENOME = 20


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


class GeneMatrix:
    """Every genome's connection weights in one (genomes × innovations) matrix."""

    def __init__(self, genomes: Sequence[Genome]) -> None:
        sizes = np.fromiter((g.innov.shape[0] for g in genomes), np.int64, len(genomes))
        all_innov = np.concatenate([g.innov for g in genomes])
        self.columns = np.unique(all_innov)
        rows = np.repeat(np.arange(len(genomes)), sizes)
        cols = np.searchsorted(self.columns, all_innov)
        self.present = np.zeros((len(genomes), self.columns.shape[0]), dtype=np.bool_)
        self.weights = np.zeros(self.present.shape, dtype=np.float64)
        self.present[rows, cols] = True
        self.weights[rows, cols] = np.concatenate([g.weight for g in genomes])
        self.sizes = sizes

    def distances(self, rep: Genome, rows: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
        """Distance from each genome (or each of ``rows``) to ``rep``."""
        idx = np.searchsorted(self.columns, rep.innov)
        idx = np.minimum(idx, self.columns.shape[0] - 1)
        known = self.columns[idx] == rep.innov  # rep genes absent from the whole population
        idx, rep_w = idx[known], rep.weight[known]
        present = self.present[:, idx] if rows is None else self.present[np.ix_(rows, idx)]
        weights = self.weights[:, idx] if rows is None else self.weights[np.ix_(rows, idx)]
        sizes = self.sizes if rows is None else self.sizes[rows]
        matching = present.sum(axis=1)
        wdiff = (np.abs(weights - rep_w) * present).sum(axis=1) / np.maximum(matching, 1)
        n_rep = rep.innov.shape[0]
        mismatched = sizes + n_rep - 2 * matching
        norm = np.maximum(sizes, n_rep)
        norm = np.where(norm < SMALL_GENOME, 1, norm)
        return np.asarray(MISMATCH_COEFF * mismatched / norm + WEIGHT_COEFF * wdiff)


def distance(a: Genome, b: Genome) -> float:
    """Compatibility distance between two genomes."""
    return float(GeneMatrix([a]).distances(b)[0])


def _assign_existing(
    matrix: GeneMatrix, previous: Sequence[Species], threshold: float
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Each genome's nearest previous species within threshold (-1 when none)."""
    n = matrix.present.shape[0]
    if not previous:
        return np.full(n, -1, dtype=np.int64), np.zeros((n, 0))
    dist = np.stack([matrix.distances(s.representative) for s in previous], axis=1)
    nearest = np.argmin(dist, axis=1)
    ok = dist[np.arange(n), nearest] < threshold
    return np.where(ok, nearest, -1).astype(np.int64), dist


def speciate(
    genomes: Sequence[Genome],
    previous: Sequence[Species],
    threshold: float,
    generation: int,
    next_species_id: int,
) -> tuple[tuple[Species, ...], int]:
    """Assign genomes to species; returns the living species and the next free species id.

    A genome joins the nearest previous species whose representative is within the
    threshold; the rest found new species in population order.  A surviving species' new
    representative is its member closest to the old one.
    """
    matrix = GeneMatrix(genomes)
    assign, dist = _assign_existing(matrix, previous, threshold)
    species: list[Species] = []
    for s_idx, old in enumerate(previous):
        rows = np.flatnonzero(assign == s_idx)
        if rows.shape[0] == 0:
            continue  # extinct
        rep = genomes[int(rows[np.argmin(dist[rows, s_idx])])]
        members = tuple(genomes[int(r)].key for r in rows)
        species.append(
            Species(old.id, rep, members, old.created, old.best_fitness, old.last_improved)
        )
    unassigned = np.flatnonzero(assign < 0)
    while unassigned.shape[0]:
        founder = genomes[int(unassigned[0])]
        near = matrix.distances(founder, unassigned) < threshold
        near[0] = True
        members = tuple(genomes[int(r)].key for r in unassigned[near])
        species.append(
            Species(next_species_id, founder, members, generation, float("-inf"), generation)
        )
        next_species_id += 1
        unassigned = unassigned[~near]
    return tuple(species), next_species_id
