"""The population: an immutable snapshot of one generation, and the step to the next one.

``next_generation(population, fitness, config)`` is a pure function: the same snapshot,
fitnesses (and behaviours, with ``novelty_weight``) and config always give the same next
snapshot, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ezspark_common import rng as rngs
from ezspark_common.config import TrainingConfig
from ezspark_common.neat import novelty, stagnation
from ezspark_common.neat import reproduction as rep
from ezspark_common.neat.genome import Genome, initial_genome
from ezspark_common.neat.mutation import InnovationTracker, mutate_structure, mutate_weights
from ezspark_common.neat.species import Species, adapt_threshold, speciate


@dataclass(frozen=True)
class Population:
    """One generation's genomes and species, plus the counters that outlive it."""

    generation: int
    genomes: dict[int, Genome]
    species: tuple[Species, ...]
    next_key: int
    next_species_id: int
    next_innov: int
    next_node: int
    best_fitness: float
    last_improved: int
    # The threshold this generation was speciated with; None = the config's (fixed).
    species_threshold: float | None = None

    def species_of(self) -> dict[int, int]:
        """Genome key → species id."""
        return {k: s.id for s in self.species for k in s.members}

    def global_stale(self) -> int:
        """Generations since the run's best fitness last improved."""
        return self.generation - self.last_improved

    def threshold(self, config: TrainingConfig) -> float:
        """The compatibility threshold in force for this generation."""
        return (
            config.species_threshold if self.species_threshold is None else self.species_threshold
        )


def initial_population(config: TrainingConfig) -> Population:
    """Generation 0: ``initial_population`` fully connected genomes, speciated."""
    rng = rngs.generator(config.seed, rngs.INIT)
    n_in, n_out = config.input_size, config.output_size
    std = config.initial_weight_std
    genomes = {
        k: initial_genome(k, n_in, n_out, rng, std) for k in range(config.initial_population)
    }
    species, next_sid = speciate(list(genomes.values()), (), config.species_threshold, 0, 0)
    return Population(
        generation=0,
        genomes=genomes,
        species=species,
        next_key=config.initial_population,
        next_species_id=next_sid,
        next_innov=n_in * n_out,
        next_node=n_out,
        best_fitness=float("-inf"),
        last_improved=0,
    )


def _plans(
    pop: Population,
    species: tuple[Species, ...],
    fitness: Mapping[int, float],
    config: TrainingConfig,
    score: Mapping[int, float] | None = None,
) -> tuple[list[rep.SpeciesPlan], int]:
    """Each species' plan, and how many genomes are carried over (``_elite_count``: the
    children's budget is what they leave); ``score`` (novelty's blend, in [0, 1]) replaces
    fitness in ranking and shares when given."""
    gen = pop.generation
    size = len(pop.genomes)
    ranked = [rep.rank(s.members, fitness if score is None else score) for s in species]
    survivors = [
        tuple(r[: rep.survivor_count(len(r), config.percentage_survivors_per_specie)])
        for r in ranked
    ]
    keys = [k for s in species for k in s.members]
    if score is None:
        scaled = rep.selection_fitness(np.array([fitness[k] for k in keys]), config.reward_floor)
    else:
        scaled = np.array([score[k] for k in keys], dtype=np.float64)
    ends = np.cumsum([len(s.members) for s in species])
    means = [float(v.mean()) for v in np.split(scaled, ends[:-1])]
    scores = rep.species_scores(means, [s.age(gen) for s in species], config.age_significance)
    elites = _elite_count(survivors, config)
    counts = rep.allocate(rep.budget(config, size, elites), scores)
    big_from = size / max(1, len(pop.species))
    global_stale = gen - pop.last_improved
    plans = [
        rep.SpeciesPlan(
            survivors=survivors[i],
            children=counts[i],
            rates=stagnation.species_rates(
                config,
                big=len(s.members) >= big_from,
                species_stale=s.stale(gen),
                global_stale=global_stale,
            ),
        )
        for i, s in enumerate(species)
    ]
    return plans, elites


def _elites(
    plans: list[rep.SpeciesPlan],
    species: tuple[Species, ...],
    genomes: Mapping[int, Genome],
    config: TrainingConfig,
    ranking: Mapping[int, float],
    n: int,
) -> list[tuple[int, Genome]]:
    """The ``n`` genomes carried over unchanged (with their species id): each species'
    kept survivors, champions first; with ``elitism`` "population" the generation's best
    by ``ranking`` wherever they are."""
    if config.elitism == "population":
        # A noisy task ends on a lucky draw of a genome near the line: a weak species' best
        # is a poorer ticket than the strong species' second or third (docs/config.md).
        home = {k: s.id for s in species for k in s.members}
        chosen = [(home[k], k) for k in rep.rank(list(home), ranking)[:n]]
    else:
        champions = [(s.id, p.survivors[0]) for p, s in zip(plans, species, strict=True)]
        others = [
            (s.id, k)
            for p, s in zip(plans, species, strict=True)
            for k in _kept(p.survivors, config)[1:]
        ]
        chosen = (champions + others)[:n]
    return [(sid, genomes[k]) for sid, k in chosen]


def _elite_count(survivors: Sequence[tuple[int, ...]], config: TrainingConfig) -> int:
    """How many genomes ``keep_parents`` carries over: every species' kept survivors, at
    most ``elite_cap``; the same count whichever ``elitism`` picks them."""
    if not config.keep_parents:
        return 0
    kept = sum(len(_kept(s, config)) for s in survivors)
    return min(kept, rep.elite_cap(config.max_population))


def _kept(survivors: tuple[int, ...], config: TrainingConfig) -> tuple[int, ...]:
    """The survivors ``keep_parents`` carries over: all, or the best ``elites_per_species``."""
    n = config.elites_per_species
    return survivors if n is None else survivors[:n]


def next_generation(
    pop: Population,
    fitness: Mapping[int, float],
    config: TrainingConfig,
    behaviour: Mapping[int, tuple[tuple[float, ...], ...]] | None = None,
) -> Population:
    """Select, breed, mutate and speciate: the population of generation ``pop.generation + 1``.

    ``behaviour``: each unfailed genome's behaviour per game; with ``novelty_weight`` > 0
    selection blends fitness with novelty (``neat.novelty``).  Stagnation and the run's
    best stay on fitness alone.
    """
    gen = pop.generation
    species = stagnation.update_species(pop.species, fitness, gen)
    best = max(fitness.values())
    improved = best > pop.best_fitness
    last_improved = gen if improved else pop.last_improved
    pop = _with_best(pop, max(best, pop.best_fitness), last_improved)
    species = stagnation.remove_stagnant(species, fitness, gen, config.limiting_species)
    score = _novelty_score(species, fitness, behaviour, config)
    plans, n_elites = _plans(pop, species, fitness, config, score)
    tracker = InnovationTracker(pop.next_innov, pop.next_node)
    ranking = fitness if score is None else score  # who parents and who is carried over
    born, children = _offspring(pop, plans, ranking, config, tracker)
    elites = _elites(plans, species, pop.genomes, config, ranking, n_elites)
    members = [g for _, g in elites] + children
    hints = [sid for sid, _ in elites] + [species[s_idx].id for s_idx, _ in born]
    threshold = adapt_threshold(pop.threshold(config), len(pop.species), config.target_species)
    new_species, next_sid = speciate(
        members, species, threshold, gen + 1, pop.next_species_id, hints, config.target_species
    )
    return Population(
        generation=gen + 1,
        genomes={g.key: g for g in members},
        species=new_species,
        next_key=pop.next_key + len(born),
        next_species_id=next_sid,
        next_innov=tracker.next_innov,
        next_node=tracker.next_node,
        best_fitness=pop.best_fitness,
        last_improved=last_improved,
        species_threshold=None if config.target_species is None else threshold,
    )


def _offspring(
    pop: Population,
    plans: list[rep.SpeciesPlan],
    parents: Mapping[int, float],
    config: TrainingConfig,
    tracker: InnovationTracker,
) -> tuple[list[tuple[int, Genome]], list[Genome]]:
    """Breed each species' children, then mutate them: ``(species index, unmutated child)``
    pairs and the mutated children, keyed from ``pop.next_key``, in the same order."""
    rng = rngs.generator(config.seed, rngs.REPRODUCE, pop.generation)
    crossing = rep.CrossoverRates(config.crossover_rate, config.intraspecies_crossover_rate)
    born = rep.breed(plans, pop.genomes, parents, crossing, rng, pop.next_key)
    draws = rng.random((len(born), 4))
    shaped = _mutate_structures(born, plans, draws, config.input_size, rng, tracker)
    children = mutate_weights(
        shaped,
        config.connection_mutation_rate,
        config.new_connection_assignment_rate,
        rng,
        first_key=pop.next_key,
        init_std=config.initial_weight_std,
        power=config.weight_nudge_std,
    )
    return born, children


def _novelty_score(
    species: tuple[Species, ...],
    fitness: Mapping[int, float],
    behaviour: Mapping[int, tuple[tuple[float, ...], ...]] | None,
    config: TrainingConfig,
) -> dict[int, float] | None:
    """The selection score blending fitness and novelty, or None when novelty is off."""
    if config.novelty_weight <= 0 or behaviour is None:
        return None
    keys = [k for s in species for k in s.members]
    return novelty.blend(keys, fitness, behaviour, config.novelty_weight, config.reward_floor)


def _mutate_structures(
    born: list[tuple[int, Genome]],
    plans: list[rep.SpeciesPlan],
    draws: NDArray[np.float64],
    n_in: int,
    rng: np.random.Generator,
    tracker: InnovationTracker,
) -> list[Genome]:
    """Structural mutation of every child; most draw none, and those skip the call."""
    table = np.array(
        [
            [p.rates.add_node, p.rates.add_connection, p.rates.activate, p.rates.remove]
            for p in plans
        ]
    ).reshape(len(plans), 4)
    of = np.fromiter((s_idx for s_idx, _ in born), np.int64, len(born))
    hit: list[bool] = np.any(draws < table[of], axis=1).tolist()
    rolls = draws.tolist()  # plain floats: cheaper to compare than numpy scalars
    return [
        mutate_structure(child, plans[s_idx].rates, n_in, rng, tracker, rolls[i])
        if hit[i]
        else child
        for i, (s_idx, child) in enumerate(born)
    ]


def _with_best(pop: Population, best: float, last_improved: int) -> Population:
    return Population(
        pop.generation,
        pop.genomes,
        pop.species,
        pop.next_key,
        pop.next_species_id,
        pop.next_innov,
        pop.next_node,
        best,
        last_improved,
        pop.species_threshold,
    )


def population_to_dict(pop: Population) -> dict[str, Any]:
    """A JSON-able snapshot (floats round-trip exactly)."""
    return {
        "generation": pop.generation,
        "genomes": [g.to_wire() for g in pop.genomes.values()],
        "species": [
            {
                "id": s.id,
                "representative": s.representative.to_wire(),
                "members": list(s.members),
                "created": s.created,
                "best_fitness": _num(s.best_fitness),
                "last_improved": s.last_improved,
            }
            for s in pop.species
        ],
        "next_key": pop.next_key,
        "next_species_id": pop.next_species_id,
        "next_innov": pop.next_innov,
        "next_node": pop.next_node,
        "best_fitness": _num(pop.best_fitness),
        "last_improved": pop.last_improved,
        "species_threshold": pop.species_threshold,
    }


def population_from_dict(data: Mapping[str, Any], *, cycles: bool = False) -> Population:
    """Inverse of :func:`population_to_dict` (``cycles``: a recurrent config's genomes)."""
    genomes = [Genome.from_wire(g, cycles=cycles) for g in data["genomes"]]
    species = tuple(
        Species(
            s["id"],
            Genome.from_wire(s["representative"], cycles=cycles),
            tuple(s["members"]),
            s["created"],
            _float(s["best_fitness"]),
            s["last_improved"],
        )
        for s in data["species"]
    )
    return Population(
        generation=data["generation"],
        genomes={g.key: g for g in genomes},
        species=species,
        next_key=data["next_key"],
        next_species_id=data["next_species_id"],
        next_innov=data["next_innov"],
        next_node=data["next_node"],
        best_fitness=_float(data["best_fitness"]),
        last_improved=data["last_improved"],
        species_threshold=data.get("species_threshold"),  # absent in older checkpoints
    )


def _num(value: float) -> float | None:
    # JSON has no -inf: "no fitness yet" is stored as null.
    return None if value == float("-inf") else value


def _float(value: float | None) -> float:
    return float("-inf") if value is None else float(value)
