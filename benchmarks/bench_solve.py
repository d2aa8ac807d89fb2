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

from benchmarks.learn_tasks import neat_config
from ezspark_common import rng as rngs
from ezspark_common.config import config_with, load_config
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.generations import NoSink, run_generation
from ezspark_common.trainer.training import start

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
    "lunarlander": Case(
        "LunarLander-v3", "examples/lunarlander.json", 200.0, "neat_lander.ini", 1000, 150
    ),
}


class _OutOfTimeError(Exception):
    """The wall-time budget ran out (checked between generations)."""


def ours(case: Case, seed: int, budget_s: float | None = None) -> dict[str, Any]:
    """Run the embedded trainer in-process until the threshold, the generation cap or the
    wall-time budget (checked between generations)."""
    config = config_with(
        load_config(case.example),
        seed=seed,
        fitness_threshold=case.threshold,
        generations=case.max_generations,
        max_number_of_games=GAMES,
        sub_games=GAMES,
        max_number_of_steps=case.max_steps,
        safeness=0.0,
    )
    state, evaluator = start(config), InProcessEvaluator()
    started, evaluations, out_of_time = time.perf_counter(), 0, False
    while not state.finished:
        state = run_generation(state, evaluator, NoSink())
        evaluations += state.history[-1].evaluations
        if budget_s is not None and time.perf_counter() - started > budget_s:
            out_of_time = not state.finished
            break
    best = state.best.fitness if state.best else float("nan")
    return {
        "seconds": time.perf_counter() - started,
        "evaluations": evaluations,
        "generations": len(state.history),
        "solved": best >= case.threshold,
        "best": best,
        "out_of_time": out_of_time,
    }


def theirs(case: Case, seed: int, budget_s: float | None = None) -> dict[str, Any]:
    """neat-python with its example settings, the same games and the same threshold."""
    import random

    import neat

    random.seed(seed)
    config = neat_config(HERE / case.neat_ini, case.threshold)
    env = gym.make(case.env_id)
    counter = {"generation": 0, "evaluations": 0, "best": float("-inf")}

    def evaluate(genomes: list[tuple[int, Any]], cfg: Any) -> None:
        seeds = rngs.game_seeds(seed, int(counter["generation"]), GAMES)
        for _, genome in genomes:
            net = neat.nn.FeedForwardNetwork.create(genome, cfg)
            genome.fitness = float(np.mean([_play(env, net, s, case.max_steps) for s in seeds]))
            counter["best"] = max(counter["best"], genome.fitness)
        counter["generation"] += 1
        counter["evaluations"] += len(genomes)
        solved = counter["best"] >= case.threshold
        if budget_s is not None and time.perf_counter() - started > budget_s and not solved:
            raise _OutOfTimeError

    started = time.perf_counter()
    population = neat.Population(config)
    out_of_time = False
    try:
        with contextlib.suppress(neat.CompleteExtinctionException):  # counts as not solved
            population.run(evaluate, case.max_generations)
    except _OutOfTimeError:
        out_of_time = True
    return {
        "seconds": time.perf_counter() - started,
        "evaluations": counter["evaluations"],
        "generations": counter["generation"],
        "solved": counter["best"] >= case.threshold,
        "best": counter["best"],
        "out_of_time": out_of_time,
    }


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


def run(
    names: tuple[str, ...] = ("cartpole", "acrobot"), seeds: int = 3, budget_s: float | None = None
) -> dict[str, Any]:
    """Both sides on ``seeds`` seeds per environment, each run within ``budget_s`` if set."""
    out: dict[str, Any] = {}
    for name in names:
        case = CASES[name]
        a = [ours(case, s, budget_s) for s in range(seeds)]
        b = [theirs(case, s, budget_s) for s in range(seeds)]
        out[name] = {"env": case.env_id, "threshold": case.threshold, "ours": a, "neat_python": b}
    return out


def _side(runs: list[dict[str, Any]]) -> str:
    n, ok = len(runs), sum(x["solved"] for x in runs)
    secs = statistics.median(x["seconds"] for x in runs)
    evals = statistics.median(x["evaluations"] for x in runs)
    text = f"{secs:.1f} s, {evals:.0f} evals, solved {ok}/{n}"
    if ok < n:  # then the time is a cut-off, not a time to solve: say how far it got
        best = statistics.median(x["best"] for x in runs)
        gens = statistics.median(x["generations"] for x in runs)
        text += f" (best {best:.1f} after {gens:.0f} generations)"
    return text


def _verdict(a_s: float, b_s: float, a_ok: bool, b_ok: bool) -> tuple[str, str]:
    """The time ratio and the goal's verdict; a side that did not solve only gives a bound."""
    if a_ok and b_ok:
        return f"{a_s / b_s:.2f}× time", "met" if a_s <= 0.5 * b_s else "NOT met"
    if a_ok:  # neat-python's time to solve is longer than its cut-off
        return f"< {a_s / b_s:.2f}× time", "met" if a_s <= 0.5 * b_s else "not measurable"
    if b_ok:
        return "—", "NOT met"
    return "—", "not measurable (neither solved)"


def rows(results: dict[str, Any]) -> list[str]:
    """Table rows: median seconds and evaluations, solved counts, the time ratio."""
    lines = []
    for r in results.values():
        a, b = r["ours"], r["neat_python"]
        a_s = statistics.median(x["seconds"] for x in a)
        b_s = statistics.median(x["seconds"] for x in b)
        ratio, verdict = _verdict(
            a_s, b_s, all(x["solved"] for x in a), all(x["solved"] for x in b)
        )
        lines.append(
            f"| solve {r['env']} to {r['threshold']:g} (median of {len(a)} seeds) | "
            f"{_side(a)} | {_side(b)} | {ratio} | ≤ 0.5× time | {verdict} |"
        )
    return lines


def main() -> None:
    """One side of one case, for runs too long to sit in ``make bench``: prints JSON.

    ``python -m benchmarks.bench_solve lunarlander --side ours --seed 0 --minutes 50``
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--side", choices=("ours", "neat-python"), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=None, help="wall-time budget")
    args = parser.parse_args()
    from ezspark_common.logging import configure_logging

    configure_logging("WARNING", json_logs=False)
    budget = args.minutes * 60 if args.minutes else None
    run_side = ours if args.side == "ours" else theirs
    result = run_side(CASES[args.case], args.seed, budget)
    print(json.dumps({"case": args.case, "side": args.side, "seed": args.seed, **result}))


if __name__ == "__main__":
    main()
