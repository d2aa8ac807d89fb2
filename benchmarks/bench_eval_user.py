"""A user's own environment (``examples/my_env``'s Catch-v0): EzSpark vs neat-python.

EzSpark has no lockstep version of a user's environment: it plays one Gymnasium instance
per game, stepped in a Python loop, while every game's network runs as one array
operation (``games/scalar.py``).  This row measures that path, the one the spec's user
trains on.  Both sides play the *same* genomes (grown by a few random structural
mutations, ``bench_eval_box.genomes``) on the *same* game seeds: ours through
``evaluate_batch`` with instances built beforehand (a training reuses them from
generation to generation), theirs as neat-python
``FeedForwardNetwork`` translations (``bench_eval.to_neat_python``) in a plain loop on the
bare environment, on a sample of the genomes.  The returns must agree exactly; the check
is part of the figure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

from benchmarks.bench_eval import compare, to_neat_python
from benchmarks.bench_eval_box import genomes
from ezspark_common import rng as rngs
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.evaluation.games import EnvPool
from ezspark_common.neat.genome import Genome

ENV, GAMES, MAX_STEPS, N_IN, N_OUT = "Catch-v0", 5, 400, 4, 3
PACKAGE = Path(__file__).resolve().parents[1] / "examples" / "my_env"


def _register() -> None:
    """Import the example package, as ``EZSPARK_ENV_MODULES=my_env`` would."""
    if str(PACKAGE) not in sys.path:
        sys.path.insert(0, str(PACKAGE))
    __import__("my_env")


def neat_python_returns(sample: list[Genome], seeds: list[int]) -> tuple[list[list[float]], int]:
    """Every genome on every seed, one step at a time, on the bare environment."""
    env: Any = gym.make(ENV, disable_env_checker=True).unwrapped
    out, steps = [], 0
    for genome in sample:
        net = to_neat_python(genome, N_IN, N_OUT)
        returns = []
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            total = 0.0
            for _ in range(MAX_STEPS):
                outs = net.activate(obs.tolist())
                obs, reward, term, trunc, _ = env.step(outs.index(max(outs)))  # first max
                total += float(reward)
                steps += 1
                if term or trunc:
                    break
            returns.append(total)
        out.append(returns)
    return out, steps


def run(quick: bool = False) -> dict[str, Any]:
    """One row: steps per second on each side, and whether the returns agree."""
    _register()
    population = genomes(300, N_IN, N_OUT, seed=17, weight_std=2.5)
    seeds = rngs.game_seeds(0, 0, GAMES)
    setup = GameSetup(ENV, MAX_STEPS, -1e5, N_IN, N_OUT)
    pool = EnvPool()
    evaluate_batch(population, setup, seeds[:1], envs=pool)  # builds instances, warms up
    pool.take(ENV, len(population) * GAMES)
    sample = population[: 30 if quick else 100]
    return compare(
        lambda: evaluate_batch(population, setup, seeds, envs=pool),
        lambda: neat_python_returns(sample, seeds),
        len(sample),
    )


def rows(r: dict[str, Any]) -> list[str]:
    """The table row of ``make bench``."""
    met = r["speedup"] >= 1.5
    check = "" if r["returns_identical"] else " (returns differ: check!)"
    return [
        f"| a user's own environment (examples/my_env Catch-v0, Gymnasium instances), "
        f"300 genomes × 5 games, 1 core{check} "
        f"| {r['ours_steps_per_s'] / 1e3:.0f} k steps/s "
        f"| {r['neat_python_steps_per_s'] / 1e3:.0f} k steps/s | {r['speedup']:.2f}× "
        f"| ≥ 1.5× | {'met' if met else 'NOT met'} |"
    ]


if __name__ == "__main__":
    print("\n".join(rows(run())))
