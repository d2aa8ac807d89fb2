"""Reproduction: how many children each species gets, who parents them, and elitism.

- Selection fitness is ``max(0, fitness - reward_floor)`` where ``reward_floor`` is
  ``min(0, minimum_reward) · max_number_of_steps``: the lowest return possible, so
  environments with negative rewards still give non-negative shares.
- A species' score is its members' mean selection fitness times ``1 + age_significance / age``
  (age 1 for a brand-new species), so young species get room to improve.
- ``children · P`` children are made in total (P = current population size), split between
  species in proportion to their score (largest remainders break fractions, ties to the
  older species).  With ``keep_parents = 1`` each species' survivors are also carried over
  unchanged.  The next population never exceeds ``max_population``: children are cut first.
- Survivors are the top ``percentage_survivors_per_specie`` of a species (at least one);
  every child has a survivor as parent.  With probability ``crossover_rate`` (and at least
  two species) a child is instead the crossover of its species' champion with the champion
  of another species.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ezspark_common.config import TrainingConfig
from ezspark_common.neat.genome import Genome, crossover
from ezspark_common.neat.mutation import StructuralRates


@dataclass(frozen=True)
class SpeciesPlan:
    """One species' part in the next generation."""

    survivors: tuple[int, ...]  # genome keys, best first
    children: int
    rates: StructuralRates


def rank(members: Sequence[int], fitness: Mapping[int, float]) -> list[int]:
    """Members best first; equal fitness falls back to the older (smaller) key."""
    return sorted(members, key=lambda k: (-fitness[k], k))


def survivor_count(size: int, fraction: float) -> int:
    """How many of ``size`` members survive: the top ``fraction``, at least one."""
    # The epsilon keeps 0.3 × 10 at 3, not 4, despite binary rounding.
    return max(1, min(size, math.ceil(size * fraction - 1e-9)))


def species_scores(
    mean_selection_fitness: Sequence[float], ages: Sequence[int], age_significance: float
) -> NDArray[np.float64]:
    """Each species' share weight: mean selection fitness boosted for youth."""
    mean = np.asarray(mean_selection_fitness, dtype=np.float64)
    boost = 1.0 + age_significance / np.asarray(ages, dtype=np.float64)
    return mean * boost


def allocate(total: int, scores: NDArray[np.float64]) -> list[int]:
    """Split ``total`` children in proportion to ``scores`` (largest remainder method)."""
    n = scores.shape[0]
    if n == 0 or total <= 0:
        return [0] * n
    weights = scores if scores.sum() > 0 else np.ones(n)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    remainder = total - int(counts.sum())
    order = np.lexsort((np.arange(n), -(exact - counts)))  # biggest fraction, then first
    counts[order[:remainder]] += 1
    return [int(c) for c in counts]


def budget(config: TrainingConfig, population: int, elites: int) -> int:
    """How many children fit: ``children · P``, cut so the population stays within the cap."""
    return max(0, min(config.children * population, config.max_population - elites))


def breed(
    plans: Sequence[SpeciesPlan],
    genomes: Mapping[int, Genome],
    fitness: Mapping[int, float],
    crossover_rate: float,
    rng: np.random.Generator,
    first_key: int,
) -> list[tuple[int, Genome]]:
    """Make each species' children (unmutated); returns ``(species index, child)`` pairs.

    Child ``i`` is to get key ``first_key + i``; a clone is still its parent's genome object
    (keys are given when the mutated child is built, saving a copy per child).
    """
    champions = [p.survivors[0] for p in plans]
    out: list[tuple[int, Genome]] = []
    for s_idx, plan in enumerate(plans):
        if plan.children == 0:
            continue
        picks = rng.integers(len(plan.survivors), size=plan.children)
        cross = rng.random(plan.children) < crossover_rate
        survivors = [genomes[k] for k in plan.survivors]
        children = [survivors[p] for p in picks.tolist()]
        if len(plans) > 1:
            # Clones draw nothing, so making the crossovers afterwards, in child order,
            # draws exactly what a child-by-child loop would.
            for i in np.flatnonzero(cross).tolist():
                other = int(rng.integers(len(plans) - 1))
                other += other >= s_idx
                key = first_key + len(out) + i
                children[i] = _cross(champions[s_idx], champions[other], genomes, fitness, key, rng)
        out.extend((s_idx, child) for child in children)
    return out


def _cross(
    a: int,
    b: int,
    genomes: Mapping[int, Genome],
    fitness: Mapping[int, float],
    key: int,
    rng: np.random.Generator,
) -> Genome:
    fitter, other = (a, b) if fitness[a] >= fitness[b] else (b, a)
    return crossover(genomes[fitter], genomes[other], key, rng)
