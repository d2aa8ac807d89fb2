"""Issue 12's fixes: smooth distance, real-range shares, crossover as in the paper, elites
that leave room for children, and the boost/swap order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ezspark_common.config import TrainingConfig, parse_config
from ezspark_common.neat import reproduction as rep
from ezspark_common.neat import stagnation
from ezspark_common.neat.crossover import cross_many
from ezspark_common.neat.distance import distance
from ezspark_common.neat.genome import Genome, check_genome, initial_genome
from ezspark_common.neat.mutation import InnovationTracker, StructuralRates, mutate_structure
from ezspark_common.neat.population import initial_population, next_generation
from ezspark_common.neat.species import speciate
from tests.unit.test_config_effects import BASE, born, kept


def cfg(**changes: Any) -> TrainingConfig:
    """The quiet effect-test base config with ``changes``."""
    return parse_config({**BASE, **changes})


def grown(n_in: int, n_out: int, splits: int, count: int, seed: int = 0) -> list[Genome]:
    """``count`` fully connected genomes, each with ``splits`` random connections split."""
    rng = np.random.default_rng(seed)
    tracker = InnovationTracker(n_in * n_out, n_out)
    only_split = StructuralRates(add_connection=0.0, add_node=1.0, activate=0.0, remove=0.0)
    out = []
    for k in range(count):
        g = initial_genome(k, n_in, n_out, rng)
        for _ in range(splits):
            g = mutate_structure(g, only_split, n_in, rng, tracker)
        out.append(g)
    return out


# --- distance -------------------------------------------------------------------------------


def test_one_mismatched_gene_weighs_about_the_same_at_19_and_21_genes() -> None:
    """No cliff at 20 genes: one extra gene moves the distance smoothly with genome size."""

    def extra_gene_distance(n_conn: int) -> float:
        rng = np.random.default_rng(1)
        a = Genome.build(
            0,
            [0, 1],
            [0, 0],
            range(n_conn),
            [-1] * n_conn,
            [0] * n_conn,
            rng.normal(size=n_conn),
            [True] * n_conn,
        )
        b = Genome.build(
            1,
            [0, 1],
            [0, 0],
            range(n_conn + 1),
            [-1] * n_conn + [-2],
            [0] * n_conn + [1],
            np.append(a.weight, 0.5),
            [True] * (n_conn + 1),
        )
        return distance(a, b)

    below, above = extra_gene_distance(18), extra_gene_distance(20)  # 19 and 21 genes
    assert below == pytest.approx(1.0)
    assert above == pytest.approx(20 / 21)  # the paper's N = 21 would give 1/21


def test_species_form_for_8_gene_and_32_gene_genomes_alike() -> None:
    """Two node splits apart, CartPole-sized (8 genes) and LunarLander-sized (32 genes)
    genomes both split into many species at the spec's threshold 3."""
    for n_in, n_out in ((4, 2), (8, 4)):
        genomes = grown(n_in, n_out, splits=2, count=200)
        species, _ = speciate(genomes, (), 3.0, 0, 0)
        assert len(species) >= 10, (n_in, n_out, len(species))


# --- shares ---------------------------------------------------------------------------------


def test_shares_follow_the_real_fitness_range_not_the_floor() -> None:
    """LunarLander's floor is −100,000; species at −600, −150, 0 and +250 still get shares
    in the order of their fitness, the worst none."""
    config = parse_config(
        {**BASE, "minimum_reward": -100.0, "max_number_of_steps": 1000, "children": 1}
    )
    assert config.reward_floor == -100_000
    fitness = np.repeat([-600.0, -150.0, 0.0, 250.0], 5)
    scaled = rep.selection_fitness(fitness, config.reward_floor)
    means = scaled.reshape(4, 5).mean(axis=1)
    counts = rep.allocate(150, rep.species_scores(means, [1, 1, 1, 1], 0.0))
    assert counts[0] == 0
    assert counts[1] < counts[2] < counts[3]
    assert counts == rep.allocate(150, np.array([0.0, 450.0, 600.0, 850.0]))


# --- crossover ------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.25, 0.75])
def test_crossover_within_species_happens_at_its_rate(rate: float) -> None:
    """About ``intraspecies_crossover_rate`` of 2,000 children mix two survivors."""
    config = cfg(
        initial_population=20,
        children=100,
        percentage_survivors_per_specie=1,
        intraspecies_crossover_rate=rate,
    )
    before, after = next_step(config)
    children = born(before, after)
    copies = sum(any(g.same_genes(c) for g in before.genomes.values()) for c in children)
    crossed = 1 - copies / len(children)
    assert crossed == pytest.approx(rate, abs=0.04)


def next_step(config: TrainingConfig) -> tuple[Any, Any]:
    """One generation from generation 0 with distinct fitnesses."""
    pop = initial_population(config)
    return pop, next_generation(pop, {k: float(k) for k in pop.genomes}, config)


def test_crossover_disables_a_gene_disabled_in_either_parent_three_times_in_four() -> None:
    """A matching gene disabled in one parent comes out disabled in about 75 % of children."""
    rng = np.random.default_rng(5)
    a = initial_genome(0, 3, 2, rng)
    off = np.ones(6, dtype=np.bool_)
    off[2] = False
    b = initial_genome(1, 3, 2, rng).with_enabled(off)
    children = cross_many([(a, b, False)] * 4000, list(range(4000)), rng)
    disabled = np.mean([not c.enabled[2] for c in children])
    assert disabled == pytest.approx(0.75, abs=0.03)
    assert all(c.enabled[[0, 1, 3, 4, 5]].all() for c in children)


def test_crossover_equal_fitness_inherits_the_others_extra_genes_at_random() -> None:
    """Unequal: only the fitter parent's structure; equal: the other's disjoint genes too."""
    a, b = grown(3, 2, splits=1, count=2, seed=4)
    extra = set(b.innov.tolist()) - set(a.innov.tolist())
    assert extra
    rng = np.random.default_rng(0)
    unequal = cross_many([(a, b, False)] * 200, list(range(200)), rng)
    assert all(np.array_equal(c.innov, a.innov) for c in unequal)
    equal = cross_many([(a, b, True)] * 200, list(range(200)), rng)
    for c in equal:
        check_genome(c)
    took = [len(extra & set(c.innov.tolist())) / len(extra) for c in equal]
    assert 0.35 < float(np.mean(took)) < 0.65


# --- elites and stagnation ------------------------------------------------------------------


def test_all_survivors_kept_with_a_full_population_still_breed() -> None:
    """p = 1, keep_parents 1 and a population at max_population: children are still made."""
    config = cfg(
        percentage_survivors_per_specie=1, keep_parents=1, initial_population=10, max_population=10
    )
    before, after = next_step(config)
    assert len(after.genomes) == 10
    assert len(born(before, after)) == 5
    assert len(kept(before, after)) == 5
    assert sorted(kept(before, after)) == [5, 6, 7, 8, 9]  # the fittest, champion first


def test_stale_species_prunes_at_the_plain_rate_and_grows_at_the_boosted_one() -> None:
    """Swap before boost: a stale species' remove rate is the unboosted add rate, and the
    boost applies to the (swapped) rate it adds connections with."""
    config = cfg(
        add_connection_big_specie_rate=0.3,
        remove_connection_rate=0.01,
        limiting_threshold=5,
        same_fitness_limit=3,
    )
    stale = stagnation.species_rates(config, big=True, species_stale=5, global_stale=6)
    assert stale.remove == pytest.approx(0.3)  # not 0.3 · 4 capped at 1
    assert stale.add_connection == pytest.approx(0.04)  # 0.01 · 2**(6 // 3)
    fresh = stagnation.species_rates(config, big=True, species_stale=0, global_stale=6)
    assert (fresh.add_connection, fresh.remove) == pytest.approx((1.0, 0.01))


def test_target_species_and_crossover_keep_runs_deterministic() -> None:
    """Same config and seed give bit-identical populations with every new feature on."""
    config = cfg(
        initial_population=60,
        species_threshold=1.0,
        target_species=4,
        connection_mutation_rate=0.8,
        add_node_specie_rate=0.3,
        add_connection_big_specie_rate=0.3,
        crossover_rate=0.2,
        intraspecies_crossover_rate=0.75,
        keep_parents=1,
        max_population=80,
    )

    def run() -> list[Genome]:
        pop = initial_population(config)
        for _ in range(5):
            fitness = {k: float(np.tanh(g.weight).sum()) for k, g in pop.genomes.items()}
            pop = next_generation(pop, fitness, config)
        return [pop.genomes[k] for k in sorted(pop.genomes)]

    first, second = run(), run()
    assert [g.key for g in first] == [g.key for g in second]
    assert all(a.same_genes(b) for a, b in zip(first, second, strict=True))


def test_equal_fitness_ranks_the_newer_genome_first() -> None:
    """On a plateau the newest genomes survive, so offspring replace their parents (drift)."""
    assert rep.rank([3, 7, 5, 1], {3: 2.0, 7: 1.0, 5: 2.0, 1: 1.0}) == [5, 3, 7, 1]
