"""Reproduction: how many children each species gets, who parents them, and elitism.

- Selection fitness comes from the generation's real fitness range, as neat-python's
  adjusted fitness does: ``(fitness - lo) / (hi - lo)``, in [0, 1].  *lo* is the lowest
  fitness of a genome that did not fail (genomes at ``reward_floor``, the fitness of failed
  genomes, are left out so one crash cannot flatten everyone's shares), *hi* the highest.
- A species' score is its members' mean selection fitness times ``1 + age_significance / age``
  (age 1 for a brand-new species), so young species get room to improve.
- ``children · P`` children are made in total (P = current population size), split between
  species in proportion to their score (largest remainders break fractions, ties to the
  older species).  With ``keep_parents = 1`` each species' survivors are also carried over
  unchanged, but never more than half of ``max_population``: elites cannot crowd out every
  child.  The next population never exceeds ``max_population``: children are cut first.
- Survivors are the top ``percentage_survivors_per_specie`` of a species (at least one);
  every child has a survivor as parent.  With probability ``crossover_rate`` (and at least
  two species) a child is the crossover of its species' champion with the champion of
  another species; otherwise, with probability ``intraspecies_crossover_rate`` (and at
  least two survivors) it is the crossover of two distinct survivors; else a copy of one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ezspark_common.config import TrainingConfig
from ezspark_common.neat.crossover import cross_many
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.mutation import StructuralRates


@dataclass(frozen=True)
class SpeciesPlan:
    """One species' part in the next generation."""

    survivors: tuple[int, ...]  # genome keys, best first
    children: int
    rates: StructuralRates


def rank(members: Sequence[int], fitness: Mapping[int, float]) -> list[int]:
    """Members best first; equal fitness ranks the newer (larger) key first, so on a fitness
    plateau offspring replace their parents and the population drifts instead of freezing."""
    return sorted(members, key=lambda k: (-fitness[k], -k))


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


def selection_fitness(fitness: NDArray[np.float64], floor: float) -> NDArray[np.float64]:
    """Fitness scaled to the generation's real range, [0, 1]; failed genomes (at ``floor``)
    score 0 and do not stretch the range.  A flat generation scores 1 throughout."""
    real = fitness > floor
    if not real.any():
        return np.zeros_like(fitness)
    lo, hi = float(fitness[real].min()), float(fitness[real].max())
    if hi == lo:  # all alike: equal shares, so age_significance still tells species apart
        return real.astype(np.float64)
    return np.clip((fitness - lo) / (hi - lo), 0.0, 1.0)


def elite_cap(max_population: int) -> int:
    """At most half the cap goes to carried-over parents, so children are always made."""
    return max(1, max_population // 2)


def budget(config: TrainingConfig, population: int, elites: int) -> int:
    """How many children fit: ``children · P``, cut so the population stays within the cap."""
    return max(0, min(config.children * population, config.max_population - elites))


@dataclass(frozen=True)
class CrossoverRates:
    """Probabilities that a child is an interspecies or a within-species crossover."""

    inter: float
    intra: float


def breed(
    plans: Sequence[SpeciesPlan],
    genomes: Mapping[int, Genome],
    fitness: Mapping[int, float],
    rates: CrossoverRates,
    rng: np.random.Generator,
    first_key: int,
) -> list[tuple[int, Genome]]:
    """Make each species' children (unmutated); returns ``(species index, child)`` pairs.

    Child ``i`` is to get key ``first_key + i``; a clone is still its parent's genome object
    (keys are given when the mutated child is built, saving a copy per child).
    """
    live = [(s_idx, plan) for s_idx, plan in enumerate(plans) if plan.children > 0]
    if not live:
        return []
    d = _Draws.of(live, len(plans), rng)
    counts = [plan.children for _, plan in live]
    kept = [len(plan.survivors) for _, plan in live]
    species = np.repeat([s_idx for s_idx, _ in live], counts)
    sizes = np.repeat(kept, counts)
    # Every live species' survivors end to end; a child's parent is at its species' offset
    # plus its pick.
    survivors = np.array([k for _, plan in live for k in plan.survivors], dtype=np.int64)
    offsets = np.repeat(np.cumsum([0, *kept[:-1]]), counts)
    parents = survivors[offsets + d.picks]
    inter = d.inter < rates.inter if d.inter is not None else np.zeros_like(d.intra, bool)
    intra = (d.intra < rates.intra) & ~inter & (sizes > 1)
    mates = d.mates + (d.mates >= d.picks)
    others = d.others + (d.others >= species)
    out = [(s, genomes[k]) for s, k in zip(species.tolist(), parents.tolist(), strict=True)]
    champions = np.array([p.survivors[0] for p in plans], dtype=np.int64)
    crossing = np.flatnonzero(inter | intra)
    firsts = np.where(inter, champions[species], parents)[crossing]
    # Both branches are looked up for every crossing row: where a mate or another species
    # is not used its index may be out of range, so it is clamped (and then not chosen).
    seconds = np.where(
        inter[crossing],
        champions[np.minimum(others, champions.shape[0] - 1)[crossing]],
        survivors[np.minimum(offsets + mates, survivors.shape[0] - 1)[crossing]],
    )
    pairs = [
        _ordered(a, b, genomes, fitness)
        for a, b in zip(firsts.tolist(), seconds.tolist(), strict=True)
    ]
    made = cross_many(pairs, [first_key + i for i in crossing.tolist()], rng)
    for i, child in zip(crossing.tolist(), made, strict=True):
        out[i] = (out[i][0], child)
    return out


@dataclass(frozen=True)
class _Draws:
    """The random draws of every child, species by species in the stream's order."""

    picks: NDArray[np.int64]  # the parent, among its species' survivors
    inter: NDArray[np.float64] | None  # uniforms for interspecies crossover (2+ species)
    intra: NDArray[np.float64]  # uniforms for crossover within the species
    mates: NDArray[np.int64]  # the other survivor, before skipping the parent
    others: NDArray[np.int64]  # the other species, before skipping its own

    @staticmethod
    def of(live: list[tuple[int, SpeciesPlan]], n_species: int, rng: np.random.Generator) -> _Draws:
        """Fixed draws per species, whatever is chosen, keep the stream easy to reason
        about; drawn species by species, then used for all children at once."""
        picks, inter, intra, mates, others = [], [], [], [], []
        for _, plan in live:
            n, m = plan.children, len(plan.survivors)
            picks.append(rng.integers(m, size=n))
            if n_species > 1:
                inter.append(rng.random(n))
            intra.append(rng.random(n))
            mates.append(rng.integers(max(1, m - 1), size=n))
            others.append(rng.integers(max(1, n_species - 1), size=n))
        return _Draws(
            np.concatenate(picks),
            np.concatenate(inter) if inter else None,
            np.concatenate(intra),
            np.concatenate(mates),
            np.concatenate(others),
        )


def _ordered(
    a: int, b: int, genomes: Mapping[int, Genome], fitness: Mapping[int, float]
) -> tuple[Genome, Genome, bool]:
    """``(fitter, other, equal_fitness)``; with equal fitness ``a`` comes first."""
    if fitness[b] > fitness[a]:
        a, b = b, a
    return genomes[a], genomes[b], fitness[a] == fitness[b]
