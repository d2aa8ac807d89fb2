"""CartPole-v1 evaluation throughput: EzSpark's batched core vs neat-python's plain loop.

Both sides play the *same* genomes on the *same* game seeds: our genomes are translated
into neat-python ``FeedForwardNetwork`` objects (sum aggregation, softsign activation,
response 1), so the returns must agree exactly, and the check is part of the figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym

from ezspark_common import rng as rngs
from ezspark_common.config import config_with, load_config
from ezspark_common.evaluation.batch import GameSetup, Outcome, evaluate_batch
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.network import in_edges, node_levels
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.generations import NoSink, run_generations
from ezspark_common.trainer.training import start

ENV = "CartPole-v1"
GAMES = 5
MAX_STEPS = 500


def _softsign(z: float) -> float:
    return z / (1.0 + abs(z))


def to_neat_python(genome: Genome, n_in: int, n_out: int) -> Any:
    """The same network as a neat-python FeedForwardNetwork."""
    from neat.aggregations import sum_aggregation
    from neat.nn import FeedForwardNetwork

    levels, edges = node_levels(genome), in_edges(genome)
    bias = dict(zip(genome.node_ids.tolist(), genome.biases.tolist(), strict=True))
    node_evals = [
        (node, _softsign, sum_aggregation, bias[node], 1.0, edges[node])
        for node in sorted(levels, key=lambda n: (levels[n], n))
    ]
    return FeedForwardNetwork([-(i + 1) for i in range(n_in)], list(range(n_out)), node_evals)


def neat_python_returns(genomes: list[Genome], seeds: list[int]) -> tuple[list[list[float]], int]:
    """Play every genome on every seed with gymnasium, one step at a time.

    The loop is written for speed (plain lists, no per-step numpy calls) so the baseline is
    what a careful user of neat-python would get.
    """
    # The bare environment: the loop below enforces the 500-step limit itself.
    env = gym.make(ENV, disable_env_checker=True).unwrapped
    out, steps = [], 0
    for genome in genomes:
        net = to_neat_python(genome, 4, 2)
        returns = []
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            total = 0.0
            for _ in range(MAX_STEPS):
                outs = net.activate(obs.tolist())
                obs, reward, term, trunc, _ = env.step(0 if outs[0] >= outs[1] else 1)
                total += float(reward)
                steps += 1
                if term or trunc:
                    break
            returns.append(total)
        out.append(returns)
    return out, steps


def evolved_genomes(count: int, generations: int) -> list[Genome]:
    """A population of ``count`` genomes after a few generations of real CartPole training."""
    base = load_config("examples/cartpole.json")
    config = config_with(
        base,
        initial_population=count,
        max_population=count,
        keep_parents=0,
        generations=generations + 1,
        fitness_threshold=None,
        safeness=0.0,
    )
    state = run_generations(start(config), InProcessEvaluator(), NoSink(), stop_at=generations)
    return list(state.population.genomes.values())


def compare(
    ours: Callable[[], Sequence[Outcome]],
    theirs: Callable[[], tuple[list[list[float]], int]],
    sample: int,
) -> dict[str, Any]:
    """Time ``ours`` (every genome) and ``theirs`` (neat-python on the first ``sample``):
    the steps per second of each, their ratio, and whether the returns agree."""
    started = time.perf_counter()
    mine = ours()
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    their_returns, their_steps = theirs()
    theirs_s = time.perf_counter() - started
    ours_steps = sum(o.steps for o in mine)
    ours_rate, their_rate = ours_steps / ours_s, their_steps / theirs_s
    return {
        "genomes": len(mine),
        "ours_steps": ours_steps,
        "ours_seconds": ours_s,
        "ours_steps_per_s": ours_rate,
        "neat_python_genomes": sample,
        "neat_python_steps": their_steps,
        "neat_python_seconds": theirs_s,
        "neat_python_steps_per_s": their_rate,
        "speedup": ours_rate / their_rate,
        "returns_identical": all(
            list(o.returns) == r for o, r in zip(mine, their_returns, strict=False)
        ),
    }


def measure(genomes: list[Genome], label: str, baseline_sample: int) -> dict[str, Any]:
    """Steps/s of ours on all genomes and of neat-python on a sample of them."""
    seeds = rngs.game_seeds(0, 0, GAMES)
    setup = GameSetup(ENV, MAX_STEPS, 0.0, 4, 2)
    evaluate_batch(genomes[:8], setup, seeds)  # warm-up: imports, env
    sample = genomes[:baseline_sample]
    return {
        "case": label,
        "games": GAMES,
        **compare(
            lambda: evaluate_batch(genomes, setup, seeds),
            lambda: neat_python_returns(sample, seeds),
            len(sample),
        ),
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Both cases: random generation-0 genomes and genomes evolved for a few generations."""
    from ezspark_common.neat.population import initial_population

    count = 1000
    sample = 50 if quick else 150
    config = config_with(
        load_config("examples/cartpole.json"), initial_population=count, max_population=count
    )
    fresh = list(initial_population(config).genomes.values())
    rows = [measure(fresh, "generation 0 (random genomes)", sample)]
    rows.append(measure(evolved_genomes(count, 3), "evolved 3 generations", sample))
    return rows
