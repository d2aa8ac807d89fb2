"""Every config key changes what the engine does: one test (or more) per key.

Each test runs the real engine functions with a small config twice, with the key at two
values (0 versus 1, small versus large), and checks the behaviour differs as documented in
docs/config.md.  The base config switches every mutation off, so a test only sees the key
it turns on.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from ezspark_common import rng as rngs
from ezspark_common.config import (
    EXTRA_KEYS,
    SPEC_KEYS,
    TrainingConfig,
    config_with,
    parse_config,
    stopping_warning,
)
from ezspark_common.neat import reproduction as rep
from ezspark_common.neat import stagnation
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.network import compile_batch
from ezspark_common.neat.population import Population, initial_population, next_generation
from ezspark_common.neat.species import Species
from ezspark_common.trainer.embedded import run_embedded
from ezspark_common.trainer.evaluators import (
    EmbeddedEvaluator,
    InProcessEvaluator,
    ProcessPoolEvaluator,
    SoloEvaluator,
)
from ezspark_common.trainer.generations import NoSink, run_generations
from ezspark_common.trainer.tasks import split_tasks
from ezspark_common.trainer.training import TrainingState, start
from ezspark_common.trainer.training import held as held_threshold

# A quiet base: one species (huge threshold), no mutation, no crossover, no elitism.
BASE: dict[str, Any] = {
    "gym_game_name": "CartPole-v1",
    "alone_training_iterations": 0,
    "input_size": 4,
    "output_size": 2,
    "initial_population": 10,
    "species_threshold": 1000.0,
    "generations": 3,
    "percentage_survivors_per_specie": 0.3,
    "connection_mutation_rate": 0.0,
    "new_connection_assignment_rate": 0.0,
    "add_connection_big_specie_rate": 0.0,
    "add_connection_small_specie_rate": 0.0,
    "add_node_specie_rate": 0.0,
    "activate_connection_rate": 0.0,
    "remove_connection_rate": 0.0,
    "children": 1,
    "crossover_rate": 0.0,
    "saving": 1,
    "keep_parents": 0,
    "limiting_species": 15,
    "limiting_threshold": 5,
    "max_population": 1000,
    "same_fitness_limit": 10,
    "age_significance": 0.0,
    "max_number_of_games": 2,
    "max_number_of_steps": 5,
    "safeness": 0.0,
    "sub_games": 1,
    "minimum_reward": 0.0,
    "intraspecies_crossover_rate": 0.0,
    "weight_init_std": 1.0,
    "weight_mutation_power": 0.5,
}


def cfg(**changes: Any) -> TrainingConfig:
    """The quiet base config with ``changes``, validated."""
    return parse_config({**BASE, **changes})


def ranked_fitness(pop: Population) -> dict[int, float]:
    """Distinct fitnesses: the higher the key, the fitter (key 9 is the champion of 0..9)."""
    return {k: float(k + 1) for k in pop.genomes}


def step(
    config: TrainingConfig,
    pop: Population | None = None,
    fitness: Mapping[int, float] | None = None,
) -> tuple[Population, Population]:
    """(before, after) one call of next_generation."""
    before = pop if pop is not None else initial_population(config)
    fit = fitness if fitness is not None else ranked_fitness(before)
    return before, next_generation(before, fit, config)


def born(before: Population, after: Population) -> list[Genome]:
    """The children made by the step (keys handed out after ``before``'s)."""
    return [g for k, g in after.genomes.items() if k >= before.next_key]


def kept(before: Population, after: Population) -> list[int]:
    """Keys carried over from ``before`` into ``after``."""
    return [k for k in after.genomes if k < before.next_key]


def parent_of(child: Genome, before: Population) -> int:
    """The key of the one genome of ``before`` whose genes the (unmutated) child copies."""
    matches = [k for k, g in before.genomes.items() if g.same_genes(child)]
    assert len(matches) == 1, f"child {child.key} copies {matches}"
    return matches[0]


def two_species(
    config: TrainingConfig,
    a: range,
    b: range,
    *,
    generation: int = 0,
    b_created: int = 0,
    b_best: float = float("-inf"),
    b_improved: int = 0,
) -> Population:
    """Generation-0 genomes split by hand into species A (keys ``a``) and B (keys ``b``)."""
    pop = initial_population(config)
    g = pop.genomes
    species = (
        Species(0, g[a[0]], tuple(a), 0, float("-inf"), generation),
        Species(1, g[b[0]], tuple(b), b_created, b_best, b_improved),
    )
    return dataclasses.replace(
        pop,
        generation=generation,
        species=species,
        next_species_id=2,
        last_improved=generation,
    )


def with_genes(
    pop: Population, *, weight: float | None = None, enabled: bool | None = None
) -> Population:
    """The population with every weight set to ``weight`` / every connection (dis)abled."""
    genomes = {}
    for k, g in pop.genomes.items():
        if weight is not None:
            g = g.with_weights(np.full(g.weight.shape, weight), g.biases.copy())
        if enabled is not None:
            g = g.with_enabled(np.full(g.enabled.shape, enabled))
        genomes[k] = g
    return dataclasses.replace(pop, genomes=genomes)


def train(config: TrainingConfig) -> TrainingState:
    """A whole run in this process, as ``ezspark train --workers 1`` does it."""
    return run_generations(start(config), InProcessEvaluator(), NoSink(), clock=lambda: 0.0)


def evaluate(config: TrainingConfig, pop: Population | None = None) -> Any:
    """One generation evaluated in this process."""
    pop = pop if pop is not None else initial_population(config)
    return InProcessEvaluator().evaluate(pop, config)


def test_base_is_quiet() -> None:
    """Sanity: the quiet base makes exact copies of the top 30% and keeps no parent."""
    before, after = step(cfg())
    children = born(before, after)
    assert len(children) == 10
    assert kept(before, after) == []
    assert {parent_of(c, before) for c in children} <= {7, 8, 9}


def test_every_key_has_an_effect_test() -> None:
    """This module has a test_<key>_… for each of the 29 spec keys and every engine extra."""
    names = [n for n in globals() if n.startswith("test_")]
    for key in (*SPEC_KEYS, *EXTRA_KEYS):
        assert any(n.startswith(f"test_{key}_") for n in names), key


# --- environment and sizes ------------------------------------------------------------------


def test_gym_game_name_selects_the_environment() -> None:
    """CartPole pays +1 per step, Acrobot -1: the returns follow gym_game_name."""
    cart = evaluate(cfg(gym_game_name="CartPole-v1", max_number_of_steps=4))
    acro = evaluate(
        cfg(gym_game_name="Acrobot-v1", input_size=6, output_size=3, max_number_of_steps=4)
    )
    assert {o.returns for o in cart.outcomes.values()} == {(4.0, 4.0)}
    assert {o.returns for o in acro.outcomes.values()} == {(-4.0, -4.0)}


@pytest.mark.parametrize("n_in", [1, 4, 6])
def test_input_size_sets_network_inputs(n_in: int) -> None:
    """Initial genomes connect each of the input_size inputs to every output."""
    pop = initial_population(cfg(input_size=n_in))
    for g in pop.genomes.values():
        assert g.num_connections == n_in * 2
        assert set(g.src.tolist()) == set(range(-n_in, 0))
    assert compile_batch(list(pop.genomes.values()), n_in, 2).n_inputs == n_in


@pytest.mark.parametrize("n_out", [2, 3, 5])
def test_output_size_sets_output_nodes(n_out: int) -> None:
    """Initial genomes have output_size output nodes, and actions range over them."""
    config = cfg(output_size=n_out)
    pop = initial_population(config)
    genomes = list(pop.genomes.values())
    for g in genomes:
        assert g.node_ids.tolist() == list(range(n_out))
    net = compile_batch(genomes, 4, n_out)
    values = net.new_values(1)
    net.set_inputs(values, np.random.default_rng(0).normal(size=(1, len(genomes) * 4)))
    net.activate(values)
    actions = net.actions(values)
    assert actions.shape == (1, len(genomes))
    assert actions.max() < n_out
    if n_out == 5:
        assert actions.max() >= 2  # some genome picks an action CartPole-sized nets cannot


@pytest.mark.parametrize("size", [2, 17])
def test_initial_population_sets_generation_zero(size: int) -> None:
    """Generation 0 has initial_population genomes keyed 0..n-1."""
    pop = initial_population(cfg(initial_population=size))
    assert sorted(pop.genomes) == list(range(size))
    assert pop.next_key == size
    assert sum(len(s.members) for s in pop.species) == size


# --- speciation -----------------------------------------------------------------------------


def test_species_threshold_tiny_many_species_huge_one() -> None:
    """A tiny threshold puts every random genome alone; a huge one puts all in one species."""
    assert len(initial_population(cfg(species_threshold=1e-9)).species) == 10
    assert len(initial_population(cfg(species_threshold=1e9)).species) == 1
    middle = len(initial_population(cfg(initial_population=40, species_threshold=0.5)).species)
    assert 1 < middle < 40


# --- selection and reproduction -------------------------------------------------------------


def test_percentage_survivors_per_specie_sets_elites() -> None:
    """With keep_parents 1, the top percentage of the species is carried over."""
    before, after = step(cfg(keep_parents=1, percentage_survivors_per_specie=0.3))
    assert sorted(kept(before, after)) == [7, 8, 9]
    before, after = step(cfg(keep_parents=1, percentage_survivors_per_specie=1))
    assert sorted(kept(before, after)) == list(range(10))


def test_percentage_survivors_per_specie_limits_parents() -> None:
    """A tiny percentage makes the champion the only parent; 1 lets every member parent."""
    before, after = step(cfg(percentage_survivors_per_specie=0.01))
    assert {parent_of(c, before) for c in born(before, after)} == {9}
    before, after = step(cfg(percentage_survivors_per_specie=1, children=3))
    parents = {parent_of(c, before) for c in born(before, after)}
    assert len(parents) > 3
    assert parents <= set(range(10))


def test_connection_mutation_rate_zero_copies_one_changes_all() -> None:
    """Rate 0: children carry their parent's weights; rate 1: every weight and bias differs."""
    before, after = step(cfg(percentage_survivors_per_specie=0.01))
    champ = before.genomes[9]
    for child in born(before, after):
        assert np.array_equal(child.weight, champ.weight)
        assert np.array_equal(child.biases, champ.biases)
    before, after = step(cfg(percentage_survivors_per_specie=0.01, connection_mutation_rate=1))
    for child in born(before, after):
        assert np.all(child.weight != champ.weight)
        assert np.all(child.biases != champ.biases)


def test_connection_mutation_rate_half_changes_about_half() -> None:
    """Rate 0.5 changes roughly half the values (each value decides on its own)."""
    before, after = step(
        cfg(percentage_survivors_per_specie=0.01, connection_mutation_rate=0.5, children=20)
    )
    champ = before.genomes[9]
    changed = np.mean([np.mean(c.weight != champ.weight) for c in born(before, after)])
    assert 0.35 < changed < 0.65


def test_new_connection_assignment_rate_replaces_instead_of_nudging() -> None:
    """At weights 20: rate 0 nudges (values stay near 20), rate 1 draws fresh N(0, 1) values."""
    base = with_genes(initial_population(cfg()), weight=20.0)
    config = cfg(connection_mutation_rate=1, new_connection_assignment_rate=0)
    before, after = step(config, base)
    nudged = np.concatenate([c.weight for c in born(before, after)])
    assert np.all(nudged != 20.0)
    assert np.all(np.abs(nudged - 20.0) < 3.0)
    config = cfg(connection_mutation_rate=1, new_connection_assignment_rate=1)
    before, after = step(config, base)
    fresh = np.concatenate([c.weight for c in born(before, after)])
    assert np.all(np.abs(fresh) < 6.0)


def test_new_connection_assignment_rate_needs_connection_mutation() -> None:
    """With connection_mutation_rate 0, new_connection_assignment_rate 1 changes nothing."""
    base = with_genes(initial_population(cfg()), weight=20.0)
    before, after = step(cfg(new_connection_assignment_rate=1), base)
    assert all(np.all(c.weight == 20.0) for c in born(before, after))


def test_weight_init_std_scales_initial_fresh_and_new_connection_weights() -> None:
    """weight_init_std is the spread of generation 0's weights, of replaced weights and of a
    new connection's weight: 4 gives values about four times as spread as 1."""

    def spreads(std: float) -> tuple[float, float, float]:
        config = cfg(weight_init_std=std, children=20)
        initial = np.concatenate([g.weight for g in initial_population(config).genomes.values()])
        zeroed = with_genes(initial_population(config), weight=0.0)
        config = config_with(config, connection_mutation_rate=1, new_connection_assignment_rate=1)
        before, after = step(config, zeroed)
        fresh = np.concatenate([c.weight for c in born(before, after)])
        config = cfg(weight_init_std=std, children=20, add_connection_big_specie_rate=1)
        config = config_with(config, add_node_specie_rate=1)  # a hidden node: room to connect
        before, after = step(config, zeroed)
        added = [c.weight[-1] for c in born(before, after) if c.num_connections > 10]
        return float(np.std(initial)), float(np.std(fresh)), float(np.std(added))

    small, big = spreads(1.0), spreads(4.0)
    assert all(0.6 < s < 1.5 for s in small), small
    assert all(2.4 < b < 6.0 for b in big), big


def test_weight_init_std_default_is_steep_feed_forward_and_gentle_recurrent() -> None:
    """Left out, the scale is 2.5 (nudges 1.25) feed-forward and 1 (0.5) with recurrent;
    set, it is used either way."""
    data = {k: v for k, v in BASE.items() if not k.startswith("weight_")}
    plain, memory = parse_config(data), parse_config({**data, "recurrent": True})
    assert (plain.initial_weight_std, plain.weight_nudge_std) == (2.5, 1.25)
    assert (memory.initial_weight_std, memory.weight_nudge_std) == (1.0, 0.5)
    both = parse_config({**data, "recurrent": True, "weight_init_std": 3.0})
    assert (both.initial_weight_std, both.weight_nudge_std) == (3.0, 0.5)
    spread = np.std([g.weight for g in initial_population(plain).genomes.values()])
    assert 1.5 < spread < 4.0


def test_weight_mutation_power_sets_the_nudge_size() -> None:
    """Nudges are N(0, weight_mutation_power): 0 leaves weights as they are, 2 spreads them
    four times as far as 0.5."""
    zeroed = with_genes(initial_population(cfg()), weight=0.0)

    def nudges(power: float) -> Any:
        config = cfg(connection_mutation_rate=1, weight_mutation_power=power, children=20)
        before, after = step(config, zeroed)
        return np.concatenate([c.weight for c in born(before, after)])

    assert np.all(nudges(0.0) == 0.0)
    assert 0.35 < float(np.std(nudges(0.5))) < 0.65
    assert 1.4 < float(np.std(nudges(2.0))) < 2.6


def _gained_connection(before: Population, after: Population) -> list[bool]:
    return [c.num_connections > 8 for c in born(before, after)]


def test_add_connection_big_specie_rate_applies_to_big_species() -> None:
    """One species is big: its children gain connections at the big rate, not the small one."""
    before, after = step(cfg(add_connection_big_specie_rate=1, children=3))
    gained = _gained_connection(before, after)
    assert sum(gained) > len(gained) // 2
    before, after = step(cfg(add_connection_small_specie_rate=1, children=3))
    assert not any(_gained_connection(before, after))


def test_add_connection_small_specie_rate_applies_to_small_species() -> None:
    """Species B (1 of 10 genomes, 2 species: below 10/2) uses the small rate, A the big one."""
    config = cfg(add_connection_small_specie_rate=1, children=3)
    pop = two_species(config, range(9), range(9, 10))
    # B gets most children; key 0 sets the low end of the range, so A's others get some.
    fitness = {0: 1.0} | dict.fromkeys(range(1, 9), 5.0) | {9: 9.0}
    before, after = step(config, pop, fitness)
    by_parent: dict[int, list[Genome]] = {}
    for c in born(before, after):
        same = [k for k, g in before.genomes.items() if np.array_equal(g.weight, c.weight[:8])]
        by_parent.setdefault(same[0], []).append(c)
    b_children = by_parent.pop(9)
    assert sum(c.num_connections > 8 for c in b_children) > len(b_children) // 2
    assert by_parent, "species A got no children"
    assert all(c.num_connections == 8 for cs in by_parent.values() for c in cs)
    # The same population with the rates the other way round: B's children stay as they were.
    config = cfg(add_connection_big_specie_rate=1, children=3)
    before, after = step(config, pop, fitness)
    for c in born(before, after):
        if np.array_equal(c.weight[:8], before.genomes[9].weight):
            assert c.num_connections == 8


def test_add_node_specie_rate_one_every_child_gains_a_node() -> None:
    """Rate 1: every child splits a connection (one new node, two new genes); 0: none does."""
    before, after = step(cfg(add_node_specie_rate=1))
    for c in born(before, after):
        assert len(c.node_ids) == 3
        assert c.num_connections == 10
        assert int(c.enabled.sum()) == 9
    before, after = step(cfg(add_node_specie_rate=0))
    assert all(len(c.node_ids) == 2 for c in born(before, after))


def test_activate_connection_rate_enables_one_disabled_connection() -> None:
    """All connections disabled: rate 1 re-enables exactly one per child, rate 0 none."""
    base = with_genes(initial_population(cfg()), enabled=False)
    before, after = step(cfg(activate_connection_rate=1), base)
    assert [int(c.enabled.sum()) for c in born(before, after)] == [1] * 10
    before, after = step(cfg(activate_connection_rate=0), base)
    assert [int(c.enabled.sum()) for c in born(before, after)] == [0] * 10


def test_remove_connection_rate_disables_one_connection() -> None:
    """Rate 1 disables exactly one connection per child (the gene stays), rate 0 none."""
    before, after = step(cfg(remove_connection_rate=1))
    for c in born(before, after):
        assert c.num_connections == 8
        assert int(c.enabled.sum()) == 7
    before, after = step(cfg(remove_connection_rate=0))
    assert all(int(c.enabled.sum()) == 8 for c in born(before, after))


@pytest.mark.parametrize("children", [1, 2, 3])
def test_children_multiplies_the_brood(children: int) -> None:
    """children · P children are made; without elitism that is the next population size."""
    before, after = step(cfg(children=children))
    assert len(born(before, after)) == children * 10
    assert len(after.genomes) == children * 10


def test_crossover_rate_one_mixes_two_champions() -> None:
    """Rate 1: children mix two species' champions gene by gene; rate 0: plain copies."""
    config = cfg(species_threshold=1e-9, crossover_rate=0)  # every genome its own species
    before, after = step(config)
    assert len(before.species) == 10
    assert all(any(g.same_genes(c) for g in before.genomes.values()) for c in born(before, after))
    before, after = step(cfg(species_threshold=1e-9, crossover_rate=1))
    olds = list(before.genomes.values())
    mixed = 0
    for c in born(before, after):
        pairs = [
            (a, b)
            for a in olds
            for b in olds
            if a.key != b.key and np.all((c.weight == a.weight) | (c.weight == b.weight))
        ]
        assert pairs, f"child {c.key} is not made of two champions' genes"
        mixed += not any(g.same_genes(c) for g in olds)
    assert mixed >= len(born(before, after)) // 2


def test_crossover_rate_needs_two_species() -> None:
    """With a single species, crossover_rate 1 still yields plain copies of survivors."""
    before, after = step(cfg(crossover_rate=1))
    assert all(any(g.same_genes(c) for g in before.genomes.values()) for c in born(before, after))


def test_keep_parents_one_carries_survivors_unchanged() -> None:
    """keep_parents 1: survivors reappear with their keys and genes; 0: none reappears."""
    before, after = step(cfg(keep_parents=1))
    assert sorted(kept(before, after)) == [7, 8, 9]
    for k in kept(before, after):
        assert after.genomes[k] is before.genomes[k] or after.genomes[k].same_genes(
            before.genomes[k]
        )
    assert len(after.genomes) == 10 + 3
    before, after = step(cfg(keep_parents=0))
    assert kept(before, after) == []
    assert len(after.genomes) == 10


def test_elites_per_species_carries_over_only_each_species_best() -> None:
    """With keep_parents 1 and half the species surviving (keys 5..9), elites_per_species
    2 carries over only keys 8 and 9, left out all five; the parents stay all five."""
    config = cfg(keep_parents=1, percentage_survivors_per_specie=0.5)
    before, after = step(config)
    assert sorted(kept(before, after)) == [5, 6, 7, 8, 9]
    before, after = step(config_with(config, elites_per_species=2))
    assert sorted(kept(before, after)) == [8, 9]
    assert {parent_of(c, before) for c in born(before, after)} <= {5, 6, 7, 8, 9}
    assert len({parent_of(c, before) for c in born(before, after)}) > 2
    _, plain = step(config_with(config, keep_parents=0, elites_per_species=2))
    assert kept(before, plain) == []


def test_elitism_population_keeps_the_generations_best_wherever_they_are() -> None:
    """Species A (keys 0..4) and B (5..9), one elite per species: "species" keeps each
    champion (4 and 9), "population" as many genomes, the generation's best (9 and 8)."""
    config = cfg(keep_parents=1, percentage_survivors_per_specie=0.4, elites_per_species=1)
    pop = two_species(config, range(5), range(5, 10))
    before, by_species = step(config, pop)
    assert sorted(kept(before, by_species)) == [4, 9]
    before, after = step(config_with(config, elitism="population"), pop)
    assert sorted(kept(before, after)) == [8, 9]
    assert len(after.genomes) == len(by_species.genomes)
    _, plain = step(config_with(config, keep_parents=0, elitism="population"), pop)
    assert kept(before, plain) == []


@pytest.mark.parametrize(("cap", "expected"), [(25, 25), (12, 12), (1000, 30)])
def test_max_population_caps_the_next_population(cap: int, expected: int) -> None:
    """children 3 × 10 = 30 would be made; max_population cuts children to fit the cap."""
    _, after = step(cfg(children=3, max_population=cap))
    assert len(after.genomes) == expected


def test_max_population_keeps_elites_and_cuts_children() -> None:
    """With elitism the survivors stay and only max_population - elites children are made."""
    before, after = step(cfg(children=3, keep_parents=1, max_population=12))
    assert sorted(kept(before, after)) == [7, 8, 9]
    assert len(born(before, after)) == 9


def test_intraspecies_crossover_rate_one_crosses_two_survivors_zero_copies() -> None:
    """Rate 1: every child mixes two survivors of its species; rate 0: every child is a copy."""
    config = cfg(intraspecies_crossover_rate=1, percentage_survivors_per_specie=1)
    before, after = step(config)
    for c in born(before, after):
        assert not any(g.same_genes(c) for g in before.genomes.values())
        sources = {k for k, g in before.genomes.items() if np.isin(c.weight, g.weight).any()}
        assert len(sources) == 2, f"child {c.key} mixes {sources}"
    before, after = step(cfg(intraspecies_crossover_rate=0, percentage_survivors_per_specie=1))
    assert all(any(g.same_genes(c) for g in before.genomes.values()) for c in born(before, after))


def test_target_species_adapts_the_threshold_absent_keeps_it_fixed() -> None:
    """With target_species the threshold moves toward the target count; without, it stays."""
    config = cfg(initial_population=40, species_threshold=0.5, connection_mutation_rate=0.5)
    pop = initial_population(config)
    many = len(pop.species)
    assert many > 2
    fixed = next_generation(pop, ranked_fitness(pop), config)
    assert fixed.species_threshold is None
    assert fixed.threshold(config) == 0.5
    targeted = config_with(config, target_species=2)
    after = next_generation(pop, ranked_fitness(pop), targeted)
    assert after.threshold(targeted) > 0.5  # too many species: raised
    few = config_with(config, species_threshold=1e6, target_species=5)
    one = initial_population(few)
    assert next_generation(one, ranked_fitness(one), few).threshold(few) < 1e6  # too few


def test_novelty_weight_lets_an_odd_behaviour_breed_on_a_fitness_plateau() -> None:
    """All at one fitness: weight 0 breeds from the newest keys, weight 1 from the genome
    whose behaviour stands out (key 3), though its fitness is no better."""
    flat = dict.fromkeys(range(10), -200.0)
    behaviour = {k: ((0.01 * k, 0.0),) for k in range(10)} | {3: ((10.0, 0.0),)}

    def parents(weight: float) -> set[int]:
        config = cfg(novelty_weight=weight, minimum_reward=-1, max_number_of_steps=200)
        before = initial_population(config)
        after = next_generation(before, flat, config, behaviour)
        return {parent_of(c, before) for c in born(before, after)}

    assert parents(0) == {7, 8, 9}
    assert 3 in parents(1)


# --- stagnation -----------------------------------------------------------------------------


def test_limiting_species_kills_a_stale_species() -> None:
    """A species without improvement for limiting_species generations loses all its genomes."""

    def run(limit: int) -> tuple[Population, Population]:
        config = cfg(keep_parents=1, limiting_species=limit, limiting_threshold=1)
        # B (keys 5..9) peaked long ago at 1e9 and is stale for 10 generations; A holds the best.
        pop = two_species(config, range(5), range(5, 10), generation=10, b_best=1e9, b_improved=0)
        fitness = {k: 10.0 + k for k in range(5)} | {k: 1.0 + k for k in range(5, 10)}
        return step(config, pop, fitness)

    before, after = run(5)
    assert [s.id for s in after.species if s.id == 1] == []
    assert all(k < 5 for k in kept(before, after))
    assert all(parent_of(c, before) < 5 for c in born(before, after))
    before, after = run(11)
    assert 9 in kept(before, after)
    assert any(parent_of(c, before) >= 5 for c in born(before, after))


def test_limiting_species_never_kills_the_best_species() -> None:
    """The species holding the generation's best genome survives however stale it is."""
    config = cfg(keep_parents=1, limiting_species=2, limiting_threshold=1)
    pop = two_species(config, range(5), range(5, 10), generation=10, b_best=1e9, b_improved=0)
    fitness = dict.fromkeys(range(5), 1.0) | dict.fromkeys(range(5, 10), 100.0)
    before, after = step(config, pop, fitness)
    assert 9 in kept(before, after)  # B's champion (equal fitness: the newest key)


def test_limiting_threshold_swaps_add_and_remove_rates() -> None:
    """From limiting_threshold stale generations on, add-connection and remove rates swap."""
    config = cfg(
        add_connection_big_specie_rate=0.3, remove_connection_rate=0.01, limiting_threshold=5
    )
    fresh = stagnation.species_rates(config, big=True, species_stale=4, global_stale=0)
    stale = stagnation.species_rates(config, big=True, species_stale=5, global_stale=0)
    assert (fresh.add_connection, fresh.remove) == (0.3, 0.01)
    assert (stale.add_connection, stale.remove) == (0.01, 0.3)
    later = cfg(
        add_connection_big_specie_rate=0.3, remove_connection_rate=0.01, limiting_threshold=6
    )
    assert (
        stagnation.species_rates(later, big=True, species_stale=5, global_stale=0).add_connection
        == 0.3
    )


def test_limiting_threshold_stale_species_prunes_in_next_generation() -> None:
    """End to end: a species stale past limiting_threshold disables instead of adding."""

    def run(threshold: int) -> list[Genome]:
        config = cfg(
            add_connection_big_specie_rate=1,
            limiting_threshold=threshold,
            limiting_species=50,
            children=2,
        )
        pop = initial_population(config)
        (only,) = pop.species
        stale = dataclasses.replace(only, best_fitness=1e9, last_improved=0)
        pop = dataclasses.replace(pop, generation=6, species=(stale,), last_improved=6)
        before, after = step(config, pop)
        return born(before, after)

    for c in run(3):  # stale 6 >= 3: add rate 0 (was remove), remove rate 1
        assert (c.num_connections, int(c.enabled.sum())) == (8, 7)
    grown = run(10)  # stale 6 < 10: add rate 1, remove 0
    assert all(int(c.enabled.sum()) == c.num_connections for c in grown)
    assert sum(c.num_connections > 8 for c in grown) > len(grown) // 2


def test_same_fitness_limit_doubles_add_connection_rates_per_period() -> None:
    """Each full same_fitness_limit period without a new best doubles add rates (cap 1)."""
    config = cfg(
        add_connection_big_specie_rate=0.1,
        add_connection_small_specie_rate=0.05,
        same_fitness_limit=3,
    )

    def add(global_stale: int, big: bool = True) -> float:
        return stagnation.species_rates(
            config, big=big, species_stale=0, global_stale=global_stale
        ).add_connection

    assert [add(s) for s in (0, 2, 3, 5, 6, 9, 12)] == pytest.approx(
        [0.1, 0.1, 0.2, 0.2, 0.4, 0.8, 1.0]
    )
    assert add(6, big=False) == pytest.approx(0.2)
    longer = cfg(add_connection_big_specie_rate=0.1, same_fitness_limit=10)
    assert stagnation.species_rates(
        longer, big=True, species_stale=0, global_stale=6
    ).add_connection == pytest.approx(0.1)


def test_same_fitness_limit_counts_from_the_last_global_improvement() -> None:
    """End to end: after a stall of same_fitness_limit generations, more children grow."""

    def grown(limit: int) -> int:
        config = cfg(
            add_connection_big_specie_rate=0.25,
            same_fitness_limit=limit,
            children=4,
            limiting_species=50,
            limiting_threshold=40,
        )
        pop = initial_population(config)
        # The run's best (1e9) was last beaten at generation 0; now it is generation 8.
        pop = dataclasses.replace(pop, generation=8, best_fitness=1e9, last_improved=0)
        before, after = step(config, pop)
        return sum(c.num_connections > 8 for c in born(before, after))

    assert grown(4) > grown(20)  # rate 0.25 · 2**(8 // 4) = 1 versus 0.25


def test_age_significance_favours_young_species() -> None:
    """Equal fitness: age_significance 0 scores species alike, 1 gives the young one more."""
    flat = rep.species_scores([5.0, 5.0], [10, 1], 0.0)
    young = rep.species_scores([5.0, 5.0], [10, 1], 1.0)
    assert flat[0] == flat[1]
    assert young[1] > young[0]
    assert young.tolist() == pytest.approx([5.0 * 1.1, 5.0 * 2.0])
    assert rep.allocate(20, flat) == [10, 10]
    assert rep.allocate(20, young)[1] > rep.allocate(20, young)[0]


def test_age_significance_in_next_generation() -> None:
    """End to end: a species born this generation gets more children than an old one."""

    def split(sig: float) -> Counter[int]:
        config = cfg(age_significance=sig, percentage_survivors_per_specie=1)
        pop = two_species(config, range(5), range(5, 10), generation=9, b_created=9, b_improved=9)
        before, after = step(config, pop, dict.fromkeys(range(10), 3.0))
        return Counter(int(parent_of(c, before) >= 5) for c in born(before, after))

    assert split(0.0) == Counter({0: 5, 1: 5})
    aged = split(1.0)
    assert aged[1] > aged[0]


# --- evaluation -----------------------------------------------------------------------------


@pytest.mark.parametrize("games", [1, 3])
def test_max_number_of_games_sets_returns_per_outcome(games: int) -> None:
    """Each genome plays max_number_of_games games: one return per game."""
    result = evaluate(cfg(max_number_of_games=games))
    assert {len(o.returns) for o in result.outcomes.values()} == {games}


def test_max_number_of_games_uses_distinct_game_seeds() -> None:
    """The games of a generation are different episodes (distinct seeds)."""
    seeds = rngs.game_seeds(0, 0, 5)
    assert len(set(seeds)) == 5


def test_max_number_of_steps_caps_steps() -> None:
    """CartPole cannot fall in 3 steps: each game returns exactly max_number_of_steps."""
    short = evaluate(cfg(max_number_of_steps=3))
    for o in short.outcomes.values():
        assert o.returns == (3.0, 3.0)
        assert o.steps == 6
    long = evaluate(cfg(max_number_of_steps=200))
    returns = [r for o in long.outcomes.values() for r in o.returns]
    assert max(returns) > 3.0
    assert max(returns) <= 200.0


@pytest.mark.parametrize(
    ("minimum", "steps", "floor"),
    [
        (0.0, 10, 0.0),
        (3.0, 10, 0.0),
        (-1.0, 10, -10.0),
        (-2.5, 4, -10.0),
    ],
)
def test_minimum_reward_sets_reward_floor(minimum: float, steps: int, floor: float) -> None:
    """reward_floor = min(0, minimum_reward) · max_number_of_steps."""
    config = cfg(minimum_reward=minimum, max_number_of_steps=steps)
    assert config.reward_floor == floor


def test_minimum_reward_marks_failures_left_out_of_the_share_range() -> None:
    """A genome at reward_floor counts as failed: it does not stretch the range and flatten
    the shares; with a lower floor the same fitness is a real result that does."""

    def split(minimum: float) -> Counter[int]:
        config = cfg(
            minimum_reward=minimum, max_number_of_steps=10, percentage_survivors_per_specie=1
        )
        pop = two_species(config, range(5), range(5, 10))
        fitness = {k: 10.0 + k for k in range(5)} | {k: float(k - 4) for k in range(5, 9)}
        fitness[9] = -1000.0  # the floor with minimum_reward -100: a failed genome
        before, after = step(config, pop, fitness)
        return Counter(int(parent_of(c, before) >= 5) for c in born(before, after))

    failed, real = split(-100.0), split(-200.0)
    assert failed[0] >= 8  # range 1 … 14: B's members sit near its bottom
    assert real[1] >= 4  # range −1000 … 14: both species look alike


class _RaisingEnv(gym.Env[np.ndarray, int]):
    """Four inputs, two actions; ``step`` always raises."""

    observation_space = spaces.Box(-1.0, 1.0, (4,), np.float64)
    action_space = spaces.Discrete(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return np.zeros(4), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        raise RuntimeError("boom")


def test_minimum_reward_is_what_a_failing_genome_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """A genome whose environment raises gets reward_floor for every game, with the error."""
    env_id = "EzConfigEffects/Raise-v0"
    monkeypatch.setitem(gym.registry, env_id, EnvSpec(id=env_id, entry_point=_RaisingEnv))
    for minimum, expected in ((0.0, 0.0), (-1.5, -6.0)):
        config = cfg(
            gym_game_name=env_id,
            minimum_reward=minimum,
            max_number_of_steps=4,
            initial_population=2,
        )
        result = evaluate(config)
        for o in result.outcomes.values():
            assert o.returns == (expected, expected)
            assert o.error is not None
            assert "boom" in o.error


@pytest.mark.parametrize(
    ("safeness", "checks"),
    [
        (0.0, 0),
        (0.04, 0),
        (0.25, 3),
        (0.5, 5),
        (1.0, 10),
    ],
)
def test_safeness_rechecks_round_of_safeness_times_p(safeness: float, checks: int) -> None:
    """round(safeness · P) genomes (halves round up) are evaluated twice; all agree."""
    result = evaluate(cfg(safeness=safeness))
    assert result.checks == checks
    assert result.mismatches == 0


@pytest.mark.parametrize(("sub_games", "groups"), [(1, 5), (2, 3), (3, 2), (5, 1)])
def test_sub_games_sets_task_count(sub_games: int, groups: int) -> None:
    """Games are cut into ceil(games / sub_games) groups per genome chunk."""
    specs = split_tasks(list(range(10)), 5, sub_games, batch_size=4)
    assert len(specs) == groups * 3  # 3 chunks of up to 4 genomes
    assert all(len(s.game_indices) <= sub_games for s in specs)
    covered = Counter((k, g) for s in specs for k in s.genome_keys for g in s.game_indices)
    assert set(covered.values()) == {1}
    assert len(covered) == 10 * 5


def test_sub_games_leaves_merged_results_identical() -> None:
    """However games are grouped, each genome gets the same returns in the same order."""
    results = [
        evaluate(cfg(max_number_of_games=5, sub_games=s, max_number_of_steps=30)).outcomes
        for s in (1, 2, 5)
    ]
    assert results[0] == results[1] == results[2]
    assert len({o.returns for o in results[0].values()}) > 1  # not trivially all equal


# --- the run --------------------------------------------------------------------------------


@pytest.mark.parametrize("generations", [1, 3])
def test_generations_sets_history_length(generations: int) -> None:
    """A run evaluates exactly `generations` generations, then finishes."""
    state = train(cfg(generations=generations, initial_population=6))
    assert len(state.history) == generations
    assert [r.generation for r in state.history] == list(range(generations))
    assert state.finished == "generations"


@pytest.mark.parametrize(
    ("saving", "files"),
    [
        (1, [0, 1, 2, 3, 4]),
        (2, [0, 2, 4]),
        (3, [0, 3]),
        (10, [0]),
    ],
)
def test_saving_writes_a_genome_every_saving_generations(
    tmp_path: Path, saving: int, files: list[int]
) -> None:
    """run_embedded writes genomes/gen-NNNNNN.json for generations divisible by `saving`."""
    config = cfg(
        saving=saving,
        generations=5,
        initial_population=6,
        max_number_of_steps=20,
        max_number_of_games=1,
    )
    evaluator = InProcessEvaluator()
    try:
        run_embedded(start(config), evaluator, tmp_path)
    finally:
        evaluator.close()
    saved = sorted(p.name for p in (tmp_path / "genomes").iterdir())
    assert saved == [f"gen-{g:06d}.json" for g in files]
    for g in files:
        doc = json.loads((tmp_path / "genomes" / f"gen-{g:06d}.json").read_text())
        assert doc["generation"] == g
    assert (tmp_path / "best.json").exists()
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 5


def test_alone_training_iterations_pool_only_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generations before alone_training_iterations run in one process (with --workers N,
    the first worker alone); later ones use every worker of the pool."""
    monkeypatch.delenv("EZSPARK_ENV_MODULES", raising=False)
    config = cfg(alone_training_iterations=2, initial_population=4)
    one = EmbeddedEvaluator(workers=1)
    assert isinstance(one.evaluator_for(config, 5), InProcessEvaluator)
    evaluator = EmbeddedEvaluator(workers=2)
    played: list[list[int]] = []  # the workers given each generation's tasks
    try:
        assert evaluator.evaluator_for(config, 0) is evaluator.here
        assert evaluator.evaluator_for(config, 1) is evaluator.here
        assert isinstance(evaluator.here, SoloEvaluator)
        later = cfg(alone_training_iterations=5, initial_population=4)
        assert evaluator.evaluator_for(later, 2) is evaluator.here
        pool = evaluator.evaluator_for(config, 2)
        assert isinstance(pool, ProcessPoolEvaluator)
        assert pool.workers == 2
        assert not pool.started
        alone = dataclasses.replace(initial_population(config), generation=1)
        together = dataclasses.replace(initial_population(config), generation=2)
        # Whoever plays it, the outcomes are exactly what this process computes.
        assert evaluator.evaluate(alone, config).outcomes == evaluate(config, alone).outcomes
        assert pool.started
        assert pool._pool is not None
        run = pool._pool.run
        spy = lambda assigned: played.append([w for w, _ in assigned]) or run(assigned)  # noqa: E731
        monkeypatch.setattr(pool._pool, "run", spy)
        pooled = evaluator.evaluate(together, config).outcomes
        assert pooled == evaluate(config, together).outcomes
        evaluator.evaluate(alone, config)
        assert set(played[0]) == {0, 1}  # every worker of the pool
        assert set(played[1]) == {0}  # the alone phase: every task on the first worker
    finally:
        evaluator.close()
    assert not evaluator.pool.started


# --- extras ---------------------------------------------------------------------------------


def _same_population(a: Population, b: Population) -> bool:
    return a.genomes.keys() == b.genomes.keys() and all(
        a.genomes[k].same_genes(b.genomes[k]) for k in a.genomes
    )


def test_seed_same_seed_same_run_different_seed_different() -> None:
    """The seed fixes the population, the breeding and the game seeds; another seed changes all."""
    a, b, c = (initial_population(cfg(seed=s)) for s in (7, 7, 8))
    assert _same_population(a, b)
    assert not _same_population(a, c)
    _, a1 = step(cfg(seed=7, connection_mutation_rate=0.5), a)
    _, b1 = step(cfg(seed=7, connection_mutation_rate=0.5), b)
    _, c1 = step(cfg(seed=8, connection_mutation_rate=0.5), a)
    assert _same_population(a1, b1)
    assert not _same_population(a1, c1)
    assert rngs.game_seeds(7, 0, 3) == rngs.game_seeds(7, 0, 3) != rngs.game_seeds(8, 0, 3)


def test_seed_default_is_zero_and_reproducible() -> None:
    """Without a seed key a config behaves as seed 0."""
    data = dict(BASE)
    assert "seed" not in data
    assert _same_population(initial_population(parse_config(data)), initial_population(cfg(seed=0)))


@pytest.mark.parametrize(
    ("threshold", "generations", "reason"),
    [
        (None, 4, "generations"),
        (4.0, 1, "fitness_threshold"),
        (4.5, 4, "generations"),
    ],
)
def test_fitness_threshold_stops_early(
    threshold: float | None, generations: int, reason: str
) -> None:
    """CartPole capped at 4 steps scores 4: a threshold of 4 stops at once, 4.5 never does."""
    state = train(
        cfg(fitness_threshold=threshold, generations=4, initial_population=4, max_number_of_steps=4)
    )
    assert len(state.history) == generations
    assert state.finished == reason
    assert math.isclose(state.history[-1].best_fitness, 4.0)


def test_threshold_games_makes_the_stop_hold_over_more_games() -> None:
    """CartPole capped at 4 steps scores 4 on every game: with 2 games a generation a
    threshold of 4 stops at once; with threshold_games 6 only a genome carried over into a
    third generation has 6 games (every genome survives here), so the run stops there and
    answers with that genome."""
    base = {
        "fitness_threshold": 4.0,
        "generations": 6,
        "initial_population": 4,
        "max_number_of_steps": 4,
        "keep_parents": 1,
        "percentage_survivors_per_specie": 1.0,
    }
    once = train(cfg(**base))
    held = train(cfg(**base, threshold_games=6))
    assert len(once.history) == 1
    assert (len(held.history), held.finished) == (3, "fitness_threshold")
    assert held.best is not None
    assert held.best.returns == (4.0,) * 6
    assert held.best.genome.key == 0  # born in generation 0, played in all three


def test_threshold_games_keeps_only_each_genomes_latest_games() -> None:
    """A genome carried over for five generations keeps its latest threshold_games games,
    not all ten it played: the record (and checkpoint) stays bounded."""
    state = train(
        cfg(
            fitness_threshold=5.0,  # out of reach: the run goes on
            threshold_games=4,
            generations=6,
            initial_population=4,
            max_number_of_steps=4,
            keep_parents=1,
            percentage_survivors_per_specie=1.0,
        )
    )
    assert state.finished == "generations"
    assert state.record[0] == (4.0,) * 4  # genome 0 played generations 0-4 before the last
    assert max(len(r) for r in state.record.values()) == 4


def test_threshold_games_outlasts_a_lucky_draw() -> None:
    """A genome at 10 now after 0 before holds a mean of 5; one steady at 9 holds 9; a new
    genome's two games do not count where four are asked for."""
    played = {1: (0.0, 0.0, 10.0, 10.0), 2: (9.0, 9.0, 9.0, 9.0), 3: (10.0, 10.0)}
    assert held_threshold(played, 8.0, 4) == 2
    assert held_threshold(played, 9.5, 4) is None
    assert held_threshold(played, 8.0, 2) == 3


def test_threshold_games_needs_a_threshold_and_genomes_that_play_again() -> None:
    """Without a fitness_threshold it changes nothing; above one generation's games with
    keep_parents 0 the threshold can never stop the run, which the no-stopping-point
    warning then says."""
    quiet = {"generations": 3, "initial_population": 4, "max_number_of_steps": 4}
    assert len(train(cfg(**quiet, threshold_games=4)).history) == 3
    endless = {"fitness_threshold": 4.0, "generations": 600_000, "keep_parents": 0}
    assert stopping_warning(cfg(**endless)) is None
    assert stopping_warning(cfg(**endless, threshold_games=2)) is None
    assert "no stopping point" in (stopping_warning(cfg(**endless, threshold_games=3)) or "")


# --- who evaluates (the service) ------------------------------------------------------------


def test_trusted_evaluators_only_keeps_other_users_volunteers_away() -> None:
    """Off (the default), another user's volunteer serves the training next to the owner's
    machine and the operator's evaluator; on, only those two do, and the volunteer's
    answers are refused even for a task it somehow saw."""
    from ezspark_evolver.pools import Pools  # the service's rule; the embedded run has no pools

    serving = {"op-1": 1, "evu.alice.x1y2": 1, "evv.bob.z3w4": 1}
    for trusted, want in ((False, {"operator", "own", "volunteer"}), (True, {"operator", "own"})):
        config = cfg(trusted_evaluators_only=trusted)
        pools = Pools("CartPole-v1", "alice", config.trusted_evaluators_only)
        assert set(pools.live(serving)) == want
        everywhere = {pools.queue(p) for p in ("operator", "own", "volunteer")}
        assert pools.could_receive("evv.bob.z3w4", everywhere) is not trusted
    assert cfg().trusted_evaluators_only is False


# --- networks with memory -------------------------------------------------------------------


def test_recurrent_lets_add_connection_close_loops_and_evaluation_remember() -> None:
    """Off (the default), add-connection never closes a loop; on, children get loops, and
    the run's evaluation (checked by ``tests/unit/test_recurrent.py``) keeps node values."""
    from ezspark_common.neat.genome import has_cycle

    def loops(recurrent: bool) -> int:
        config = cfg(
            recurrent=recurrent,
            add_connection_big_specie_rate=1.0,
            add_node_specie_rate=0.5,
            initial_population=30,
        )
        pop = initial_population(config)
        for _ in range(6):
            pop = next_generation(pop, ranked_fitness(pop), config)
        return sum(has_cycle(g.src, g.dst) for g in pop.genomes.values())

    assert loops(False) == 0
    assert loops(True) > 0
    assert cfg().recurrent is False
    from ezspark_common.evaluation.batch import GameSetup

    for on in (False, True):  # every task of the run evaluates with (or without) memory
        assert GameSetup.of(cfg(recurrent=on)).recurrent is on


# --- input normalisation --------------------------------------------------------------------


def test_normalize_inputs_evaluates_on_centred_and_scaled_observations() -> None:
    """Off (the default), networks see raw observations; on, every game of the run is
    played on observations centred and scaled by the training's random-action constants
    (their own tests: ``tests/unit/evaluation/test_scaling.py``), so returns change."""
    from ezspark_common.evaluation.batch import GameSetup

    base = {"max_number_of_steps": 200, "weight_init_std": 1.0}
    plain = evaluate(cfg(**base))
    normalised = evaluate(cfg(**base, normalize_inputs=True))
    assert [o.returns for o in plain.outcomes.values()] != [
        o.returns for o in normalised.outcomes.values()
    ]
    assert cfg().normalize_inputs is False
    assert GameSetup.of(cfg(**base)).input_scaling is None
    on = cfg(**base, normalize_inputs=True)
    assert GameSetup.of(on).input_scaling == (rngs.scaling_seed(on.seed), 200)
