"""Stagnation: what happens to species, and to the whole run, when fitness stops improving.

- ``limiting_species``: a species whose best fitness has not improved for that many
  generations is removed (the species holding the generation's best genome never is).
- ``limiting_threshold``: after that many generations without improvement a species
  swaps its add-connection and remove-connection rates, so it prunes instead of growing.
- ``same_fitness_limit``: after every full period of that many generations without a new
  global best, the add-connection rates double (capped at 1) until the best improves.
  The boost applies after the swap, to the rate the species adds connections with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from ezspark_common.config import TrainingConfig
from ezspark_common.neat.mutation import StructuralRates
from ezspark_common.neat.species import Species


def update_species(
    species: Sequence[Species], fitness: Mapping[int, float], generation: int
) -> tuple[Species, ...]:
    """Record this generation's best fitness in each species' improvement history."""
    updated = []
    for s in species:
        best = max(fitness[k] for k in s.members)
        if best > s.best_fitness:
            s = replace(s, best_fitness=best, last_improved=generation)
        updated.append(s)
    return tuple(updated)


def remove_stagnant(
    species: Sequence[Species], fitness: Mapping[int, float], generation: int, limit: int
) -> tuple[Species, ...]:
    """Drop species stale for ``limit`` generations, keeping the one with the best genome."""
    champion = max(species, key=lambda s: (max(fitness[k] for k in s.members), -s.id))
    return tuple(s for s in species if s is champion or s.stale(generation) < limit)


def add_connection_boost(global_stale: int, same_fitness_limit: int) -> float:
    """The factor on add-connection rates after ``global_stale`` generations without a new best."""
    return float(2 ** (global_stale // same_fitness_limit))


def species_rates(
    config: TrainingConfig, *, big: bool, species_stale: int, global_stale: int
) -> StructuralRates:
    """The structural mutation rates for children of one species this generation."""
    add = config.add_connection_big_specie_rate if big else config.add_connection_small_specie_rate
    remove = config.remove_connection_rate
    # Swap first, then boost: the boost raises whatever rate adds connections, and a stale
    # species never prunes at a boosted rate.
    if species_stale >= config.limiting_threshold:
        add, remove = remove, add
    add = min(1.0, add * add_connection_boost(global_stale, config.same_fitness_limit))
    return StructuralRates(
        add_connection=add,
        add_node=config.add_node_specie_rate,
        activate=config.activate_connection_rate,
        remove=remove,
        recurrent=config.recurrent,
        weight_std=config.initial_weight_std,
    )
