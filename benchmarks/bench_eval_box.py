"""Pendulum-v1 evaluation throughput (a Box action space): the batched core vs neat-python.

Both sides play the *same* 1,000 genomes (grown by a few random structural mutations) on
the *same* 5 game seeds.  Ours run through ``evaluate_batch`` on the lockstep Pendulum;
theirs are neat-python ``FeedForwardNetwork`` translations (``bench_eval.to_neat_python``)
in a plain Gymnasium loop on the bare environment, the output squashed onto the torque
bounds exactly as EzSpark does (``ezspark_common.evaluation.actions``), on a sample of the genomes.
The returns must agree exactly; the check is part of the figure.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from benchmarks.bench_eval import compare, to_neat_python
from ezspark_common import rng as rngs
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.neat.genome import Genome, initial_genome
from ezspark_common.neat.mutation import InnovationTracker, add_connection, add_node

ENV, GAMES, MAX_STEPS, N_IN = "Pendulum-v1", 5, 200, 3


def genomes(
    count: int, n_in: int = N_IN, n_out: int = 1, seed: int = 16, weight_std: float = 1.0
) -> list[Genome]:
    """Fully connected ``n_in``→``n_out`` genomes, most with a hidden node or an extra
    connection (three draws of each, a node with probability ½)."""
    rng = np.random.default_rng(seed)
    out = []
    for key in range(count):
        tracker = InnovationTracker(next_innov=n_in * n_out, next_node=n_out)
        genome = initial_genome(key, n_in, n_out, rng, weight_std)
        for _ in range(3):
            genome = add_node(genome, rng, tracker) if rng.random() < 0.5 else genome
            genome = add_connection(genome, n_in, rng, tracker)
        out.append(genome)
    return out


def neat_python_returns(sample: list[Genome], seeds: list[int]) -> tuple[list[list[float]], int]:
    """Every genome on every seed, one step at a time (the bare env: we count the steps)."""
    env: Any = gym.make(ENV, disable_env_checker=True).unwrapped
    out, steps = [], 0
    for genome in sample:
        net = to_neat_python(genome, N_IN, 1)
        returns = []
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            total = 0.0
            for _ in range(MAX_STEPS):
                (y,) = net.activate(obs.tolist())
                torque = min(max((y + 1.0) * 2.0 + -2.0, -2.0), 2.0)  # EzSpark's squashing
                obs, reward, _, _, _ = env.step(np.array([torque], dtype=np.float32))
                total += float(reward)
            steps += MAX_STEPS
            returns.append(total)
        out.append(returns)
    return out, steps


def run(quick: bool = False) -> dict[str, Any]:
    """One row: steps per second on each side, and whether the returns agree."""
    population = genomes(1000)
    seeds = rngs.game_seeds(0, 0, GAMES)
    setup = GameSetup(ENV, MAX_STEPS, -1e5, N_IN, 1)
    evaluate_batch(population[:8], setup, seeds)  # warm-up
    sample = population[: 30 if quick else 100]
    return compare(
        lambda: evaluate_batch(population, setup, seeds),
        lambda: neat_python_returns(sample, seeds),
        len(sample),
    )


def rows(r: dict[str, Any]) -> list[str]:
    """The table row of ``make bench``."""
    met = r["ours_steps_per_s"] >= 1e6
    check = "" if r["returns_identical"] else " (returns differ: check!)"
    return [
        f"| Pendulum-v1 eval (Box actions), 1,000 genomes × 5 games, 1 core{check} "
        f"| {r['ours_steps_per_s'] / 1e6:.2f} M steps/s "
        f"| {r['neat_python_steps_per_s'] / 1e3:.0f} k steps/s | {r['speedup']:.1f}× "
        f"| ≥ 1 M steps/s | {'met' if met else 'NOT met'} |"
    ]


if __name__ == "__main__":
    print("\n".join(rows(run())))
