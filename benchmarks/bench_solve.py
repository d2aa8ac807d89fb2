"""Solve quality: wall time and evaluations until the fitness threshold, ours vs neat-python.

Both sides score a genome by its mean return over 5 games with the same per-generation
game seeds, stop at the same threshold, run in one process on one core, and get the same
generation cap.  neat-python uses the settings of its shipped examples (cartpole for
CartPole and Acrobot, openai-lander for LunarLander; see ``neat_*.ini``).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from ezspark_common import rng as rngs
from ezspark_common.config import config_with, load_config
from ezspark_common.local import LocalEvaluator
from ezspark_common.training import advance, report_for, start

HERE = Path(__file__).resolve().parent
GAMES = 5


@dataclass(frozen=True)
class Case:
    """One environment of the comparison."""

    env_id: str
    example: str
    threshold: float
    neat_ini: str
    max_steps: int
    max_generations: int


CASES = {
    "cartpole": Case("CartPole-v1", "examples/cartpole.json", 475.0, "neat_cartpole.ini", 500, 100),
    "acrobot": Case("Acrobot-v1", "examples/acrobot.json", -100.0, "neat_acrobot.ini", 500, 100),
    "lunarlander": Case("LunarLander-v3", "examples/lunarlander.json", 200.0, "neat_lander.ini",
                        1000, 150),
}


def ours(case: Case, seed: int) -> dict[str, Any]:
    """Run the embedded trainer in-process until the threshold or the generation cap."""
    config = config_with(load_config(case.example), seed=seed, fitness_threshold=case.threshold,
                         generations=case.max_generations, max_number_of_games=GAMES,
                         sub_games=GAMES, max_number_of_steps=case.max_steps, safeness=0.0)
    state, evaluator = start(config), LocalEvaluator(1)
    started, evaluations = time.perf_counter(), 0
    while not state.finished:
        result = evaluator.evaluate(state.population, config)
        evaluations += len(result.outcomes)
        state = advance(state, result.outcomes, report_for(state, result.outcomes, 1.0))
    best = state.best.fitness if state.best else float("nan")
    return {"seconds": time.perf_counter() - started, "evaluations": evaluations,
            "generations": len(state.history), "solved": best >= case.threshold, "best": best}


def theirs(case: Case, seed: int) -> dict[str, Any]:
    """neat-python with its example settings, the same games and the same threshold."""
    import random

    import neat

    random.seed(seed)
    config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                         neat.DefaultStagnation, str(HERE / case.neat_ini))
    config.fitness_threshold = case.threshold
    config.no_fitness_termination = False
    env = gym.make(case.env_id)
    counter = {"generation": 0, "evaluations": 0, "best": float("-inf")}

    def evaluate(genomes: list[tuple[int, Any]], cfg: Any) -> None:
        seeds = rngs.game_seeds(seed, counter["generation"], GAMES)
        for _, genome in genomes:
            net = neat.nn.FeedForwardNetwork.create(genome, cfg)
            genome.fitness = float(np.mean([_play(env, net, s, case.max_steps) for s in seeds]))
            counter["best"] = max(counter["best"], genome.fitness)
        counter["generation"] += 1
        counter["evaluations"] += len(genomes)

    started = time.perf_counter()
    population = neat.Population(config)
    with contextlib.suppress(neat.CompleteExtinctionException):  # counts as not solved
        population.run(evaluate, case.max_generations)
    return {"seconds": time.perf_counter() - started, "evaluations": counter["evaluations"],
            "generations": counter["generation"], "solved": counter["best"] >= case.threshold,
            "best": counter["best"]}


def _play(env: Any, net: Any, seed: int, max_steps: int) -> float:
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(max_steps):
        outs = net.activate(obs.tolist())
        obs, reward, term, trunc, _ = env.step(max(range(len(outs)), key=outs.__getitem__))
        total += float(reward)
        if term or trunc:
            break
    return total


def run(names: tuple[str, ...] = ("cartpole", "acrobot"), seeds: int = 3) -> dict[str, Any]:
    """Median wall time and evaluations over ``seeds`` seeds, per environment."""
    out: dict[str, Any] = {}
    for name in names:
        case = CASES[name]
        a = [ours(case, s) for s in range(seeds)]
        b = [theirs(case, s) for s in range(seeds)]
        out[name] = {"env": case.env_id, "threshold": case.threshold, "ours": a, "neat_python": b}
    return out


def rows(results: dict[str, Any]) -> list[str]:
    """Table rows: median seconds and evaluations, solved counts, the time ratio."""
    lines = []
    for r in results.values():
        a_s = statistics.median(x["seconds"] for x in r["ours"])
        b_s = statistics.median(x["seconds"] for x in r["neat_python"])
        a_e = statistics.median(x["evaluations"] for x in r["ours"])
        b_e = statistics.median(x["evaluations"] for x in r["neat_python"])
        a_ok = sum(x["solved"] for x in r["ours"])
        b_ok = sum(x["solved"] for x in r["neat_python"])
        n = len(r["ours"])
        lines.append(
            f"| solve {r['env']} to {r['threshold']:g} (median of {n} seeds) | "
            f"{a_s:.1f} s, {a_e:.0f} evals, solved {a_ok}/{n} | "
            f"{b_s:.1f} s, {b_e:.0f} evals, solved {b_ok}/{n} | {a_s / b_s:.2f}× time | "
            f"≤ 0.5× time | {'met' if a_s <= 0.5 * b_s and a_ok == n else 'NOT met'} |"
        )
    return lines
