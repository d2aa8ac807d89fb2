"""Speciate + reproduce at population 10,000: EzSpark vs neat-python 2.0.0.

Both start from fully connected 4→2 genomes (CartPole-sized), use the same compatibility
threshold (3.0), the same mutation rates (the spec example's) and the same synthetic
fitness (a smooth function of the weights, so selection has something to act on), and
run several generations; the figure is seconds per generation after the first.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from ezspark_common.config import config_with, load_config
from ezspark_common.neat.population import initial_population, next_generation

POPULATION = 10_000
HERE = Path(__file__).resolve().parent


def _ours_fitness(weights: np.ndarray, n_conn: int) -> float:
    return float(np.tanh(weights).sum() + 0.1 * n_conn)


def ours(generations: int) -> dict[str, Any]:
    """Seconds per generation for next_generation (speciation included)."""
    config = config_with(
        load_config("examples/spec-example.json"),
        initial_population=POPULATION,
        max_population=POPULATION,
    )
    pop = initial_population(config)
    times, species = [], []
    for _ in range(generations):
        fitness = {
            k: _ours_fitness(g.weight[g.enabled], g.num_connections) for k, g in pop.genomes.items()
        }
        started = time.perf_counter()
        pop = next_generation(pop, fitness, config)
        times.append(time.perf_counter() - started)
        species.append(len(pop.species))
    return {"seconds": times, "species": species}


def theirs(generations: int) -> dict[str, Any]:
    """Seconds per generation for neat-python's DefaultReproduction + DefaultSpeciesSet."""
    import neat

    random.seed(0)
    config = neat.Config(
        neat.DefaultGenome,
        neat.DefaultReproduction,
        neat.DefaultSpeciesSet,
        neat.DefaultStagnation,
        str(HERE / "neat_python_10k.ini"),
    )
    reporters = neat.reporting.ReporterSet()
    stagnation = config.stagnation_type(config.stagnation_config, reporters)
    repro = config.reproduction_type(config.reproduction_config, reporters, stagnation)
    pop = repro.create_new(config.genome_type, config.genome_config, POPULATION)
    species = config.species_set_type(config.species_set_config, reporters)
    species.speciate(config, pop, 0)
    times, counts = [], []
    for gen in range(generations):
        for genome in pop.values():
            w = [c.weight for c in genome.connections.values() if c.enabled]
            genome.fitness = sum(math.tanh(x) for x in w) + 0.1 * len(genome.connections)
        started = time.perf_counter()
        pop = repro.reproduce(config, species, POPULATION, gen)
        species.speciate(config, pop, gen + 1)
        times.append(time.perf_counter() - started)
        counts.append(len(species.species))
    return {"seconds": times, "species": counts}


def run(quick: bool = False) -> dict[str, Any]:
    """Median seconds per generation (first generation excluded as warm-up)."""
    gens = 4 if quick else 8
    a, b = ours(gens), theirs(gens)
    ours_s = float(np.median(a["seconds"][1:]))
    their_s = float(np.median(b["seconds"][1:]))
    return {
        "population": POPULATION,
        "generations": gens,
        "ours_seconds_per_generation": ours_s,
        "ours_species": a["species"],
        "neat_python_seconds_per_generation": their_s,
        "neat_python_species": b["species"],
        "speedup": their_s / ours_s,
        "ours_all": a["seconds"],
        "neat_python_all": b["seconds"],
    }
