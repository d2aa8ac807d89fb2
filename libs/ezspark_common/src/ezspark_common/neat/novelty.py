"""Behaviour novelty: selection that also rewards doing something the others do not.

A sparse reward (MountainCar-v0: −200 for every genome until one reaches the flag) gives
selection nothing to work with.  With ``novelty_weight`` w > 0 every genome's behaviour
(``evaluation.batch``: the range of each observation value over each game, averaged over
its games) is compared with the rest of its generation, and selection ranks genomes and
shares children by

    score = (1 − w) · fitness share + w · novelty share

both in [0, 1]: the fitness share is ``reproduction.selection_fitness`` (the generation's
real fitness range), the novelty share a genome's novelty divided by the generation's
highest.  Novelty is the mean distance to the ``NEIGHBOURS`` nearest other behaviours
(Lehman & Stanley 2011), each behaviour value first scaled by its spread over the
generation so that no value dominates by its units.  It is measured within the
generation, with no archive (behavioural diversity, Mouret & Doncieux 2012): nothing
outlives a generation, and the same fitnesses and behaviours give the same scores.
Genomes missing from ``behaviour`` (failed ones: the caller leaves them out) score 0
novelty and are no one's neighbour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.reproduction import selection_fitness

NEIGHBOURS = 15
# Distances are computed a block of rows at a time, about this many values per block, so a
# large generation never holds a population² × values array.
_BLOCK_VALUES = 1 << 22


def descriptors(behaviour: Sequence[tuple[tuple[float, ...], ...]]) -> NDArray[np.float64]:
    """One row per genome: its behaviour averaged over its games (zeros when it has none)."""
    width = max((len(b[0]) for b in behaviour if b), default=0)
    out = np.zeros((len(behaviour), width))
    for i, games in enumerate(behaviour):
        if games:
            out[i] = np.asarray(games, dtype=np.float64).mean(axis=0)
    return out


def novelty(points: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Each valid row's mean distance to its ``NEIGHBOURS`` nearest other valid rows (after
    scaling every column to unit spread over the valid rows); invalid rows get 0."""
    out = np.zeros(points.shape[0])
    idx = np.flatnonzero(valid)
    if idx.shape[0] < 2 or points.shape[1] == 0:
        return out
    x = points[idx]
    spread = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    k = min(NEIGHBOURS, idx.shape[0] - 1)
    block = max(1, _BLOCK_VALUES // (x.shape[0] * x.shape[1]))
    for start in range(0, x.shape[0], block):
        # Plain differences, not BLAS: the distances (and so the population) must not
        # depend on the machine's BLAS build or thread count.
        d2 = ((x[start : start + block, None, :] - x[None, :, :]) ** 2).sum(axis=2)
        rows = np.arange(d2.shape[0])
        d2[rows, start + rows] = np.inf  # not one's own neighbour
        nearest = np.sort(np.partition(d2, k - 1, axis=1)[:, :k], axis=1)
        out[idx[start : start + block]] = np.sqrt(nearest).mean(axis=1)
    return out


def blend(
    keys: Sequence[int],
    fitness: Mapping[int, float],
    behaviour: Mapping[int, tuple[tuple[float, ...], ...]],
    weight: float,
    floor: float,
) -> dict[int, float]:
    """Every genome's selection score in [0, 1] (see the module docstring)."""
    fit = np.array([fitness[k] for k in keys], dtype=np.float64)
    share = selection_fitness(fit, floor)
    points = descriptors([behaviour.get(k, ()) for k in keys])
    # Validity is having a behaviour, not fitness above the floor: on a sparse reward every
    # genome may score exactly the floor, and those are the ones novelty is for.
    valid = np.array([bool(behaviour.get(k)) for k in keys], dtype=np.bool_)
    nov = novelty(points, valid)
    top = float(nov.max()) if nov.shape[0] else 0.0
    nov_share = nov / top if top > 0 else nov
    score = (1.0 - weight) * share + weight * nov_share
    return dict(zip(keys, score.tolist(), strict=True))
