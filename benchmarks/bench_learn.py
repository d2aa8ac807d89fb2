"""``make bench-learn``: does evolution learn?  EzSpark beside neat-python 2.0, same run.

For every task both sides get the same population, the same generation cap (so the same
evaluation budget), the same games per genome with the same per-generation game seeds, the
same threshold, and 10 seeds each.  Each run is one process on one core.  The table gives
seeds solved, median evaluations to solve (an unsolved seed counts as never: the median is
"—" when half or more fail), their ratio with a 95 % bootstrap interval (how far ten noisy
seeds pin it down), median wall time of all runs, and what each run's winner is worth on
games it never saw; a progress line per run.

The winner is the genome each side returns (its best by fitness).  A run is solved when one
genome's mean over a generation's five games reaches the threshold, and with 150 genomes
drawing five games each, that mean is partly luck.  So the winner then plays
``HOLDOUT_GAMES`` new games, the same for both sides (seeds from their own stream, never a
generation's), outside the timed run, as Gymnasium's own "solved" for LunarLander is a
mean over 100 games.

EzSpark uses the spec's rates (``SPEC_RATES``, as in ``examples/spec-example.json``) with the
per-task settings in ``TASKS`` (both in ``learn_tasks``); neat-python the settings of its
shipped examples (``neat_*.ini``).
``python -m benchmarks.bench_learn --tasks xor parity3 --seeds 3 --jobs 2`` runs a subset;
results go to ``benchmarks/results/learn-<UTC time>.json``.  ``--sides ours`` (or ``neat``)
runs one side only; ``--table`` joins files per task, side and seed (``learn_table``
merges and prints).  A screen of one setting, as docs/learning-rounds.md's rounds run
them: ``--tasks lunarlander --sides ours --seeds 60 --first-seed 60 --generations 13 --set
weight_mutation_power=0.2`` (``--set`` is repeatable; the table's "solved" is then the
seeds solved within the cap).  ``--no-stop`` runs both sides to the cap instead of to the
threshold: one budget for all, where the winners on new games are the comparison.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import learn_table  # noqa: E402
from benchmarks.bench_solve import _play  # noqa: E402
from benchmarks.learn_tasks import TASKS, Task, neat_config, ours_config, task_for  # noqa: E402
from ezspark_common import rng as rngs  # noqa: E402
from ezspark_common.evaluation.actions import box_of  # noqa: E402
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch  # noqa: E402
from ezspark_common.trainer.evaluators import InProcessEvaluator  # noqa: E402
from ezspark_common.trainer.generations import NoSink, run_generations  # noqa: E402
from ezspark_common.trainer.training import start  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
HOLDOUT_GAMES = learn_table.HOLDOUT_GAMES
TO_THE_CAP = (
    "Every run went to the cap (--no-stop): the evaluations are the budget, not evaluations "
    "to solve, and 'solved' means the threshold was reached on the way; compare the winners."
)
_HOLDOUT_TAG = 1_000  # far from ezspark_common.rng's tags: never a generation's games


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as config keys; a value is read as JSON (``0.2``, ``true``,
    ``null``), else taken as the string itself (``elitism=population``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE, not {item!r}")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def ours(task: Task, seed: int) -> dict[str, Any]:
    """One EzSpark run in this process until the threshold or the generation cap."""
    config = ours_config(task, seed)
    started = time.perf_counter()
    state = run_generations(start(config), InProcessEvaluator(), NoSink())
    seconds = time.perf_counter() - started
    evaluations = sum(r.evaluations for r in state.history)
    best = state.best.fitness if state.best else float("nan")
    result = _result(seconds, evaluations, len(state.history), best, task)
    if state.best is not None:
        games = holdout_seeds(seed)
        [outcome] = evaluate_batch([state.best.genome], GameSetup.of(config), games)
        result["new_games"] = outcome.mean
    return result


def holdout_seeds(seed: int) -> list[int]:
    """The ``HOLDOUT_GAMES`` game seeds a run's winner is judged on, both sides alike."""
    state = np.random.SeedSequence([seed, _HOLDOUT_TAG]).generate_state(HOLDOUT_GAMES, np.uint32)
    return [int(s) for s in state]


def theirs(task: Task, seed: int) -> dict[str, Any]:
    """One neat-python run with its example settings, the same games and threshold."""
    import random

    import neat

    random.seed(seed)
    config = neat_config(
        HERE / task.neat_ini, task.threshold, stops=task.stops, pop_size=task.population
    )
    env = gym.make(task.env_id)
    count = {"generation": 0, "evaluations": 0, "best": -math.inf}
    kind = neat.nn.FeedForwardNetwork
    if not config.genome_config.feed_forward:
        kind = neat.nn.RecurrentNetwork
    box = box_of(env.action_space)

    def game(net: Any, s: int) -> float:
        if hasattr(net, "reset"):  # a recurrent network forgets between games
            net.reset()
        if box is None:
            return _play(env, net, s, task.max_steps)
        return _play_box(env, net, s, task.max_steps, box)

    def evaluate(genomes: list[tuple[int, Any]], cfg: Any) -> None:
        seeds = rngs.game_seeds(seed, int(count["generation"]), task.games)
        for _, genome in genomes:
            net = kind.create(genome, cfg)
            genome.fitness = float(np.mean([game(net, s) for s in seeds]))
            count["best"] = max(count["best"], genome.fitness)
        count["generation"] += 1
        count["evaluations"] += len(genomes)

    started = time.perf_counter()
    population = neat.Population(config)
    with contextlib.suppress(neat.CompleteExtinctionException):  # counts as not solved
        population.run(evaluate, task.generations)
    seconds = time.perf_counter() - started
    result = _result(
        seconds, int(count["evaluations"]), int(count["generation"]), count["best"], task
    )
    if population.best_genome is not None:
        net = kind.create(population.best_genome, config)
        result["new_games"] = float(np.mean([game(net, s) for s in holdout_seeds(seed)]))
    return result


def _play_box(env: Any, net: Any, seed: int, max_steps: int, box: Any) -> float:
    """One game with a Box action space: outputs squashed onto the bounds as EzSpark does."""
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(max_steps):
        outs = np.clip(np.array(net.activate(obs.tolist())), -1.0, 1.0)
        obs, reward, term, trunc, _ = env.step(box.for_env(box.squash(outs[None, :])[0]))
        total += float(reward)
        if term or trunc:
            break
    return total


def _result(seconds: float, evals: int, gens: int, best: float, task: Task) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "evaluations": evals,
        "generations": gens,
        "best": best,
        "solved": best >= task.threshold,
    }


def _one(job: tuple[str, Task, str, int]) -> tuple[str, str, int, dict[str, Any]]:
    name, task, side, seed = job
    from ezspark_common.logging import configure_logging

    configure_logging("WARNING", json_logs=False)
    return name, side, seed, (ours if side == "ezspark" else theirs)(task, seed)


SIDES: dict[str, tuple[str, ...]] = {
    "both": ("ezspark", "neat"),
    "ours": ("ezspark",),
    "neat": ("neat",),
}


@dataclass(frozen=True)
class Plan:
    """Which seeds a run takes, and what it changes in every task (a screen's settings)."""

    seeds: int
    first_seed: int = 0
    generations: int | None = None  # every task's cap, both sides; None: the task's own
    overrides: dict[str, Any] = field(default_factory=dict)  # EzSpark keys on every task
    stops: bool = True  # False: every run goes to the cap (--no-stop, an equal budget)

    def tasks(self, names: list[str]) -> dict[str, Task]:
        """The tasks as this plan runs them."""
        return {n: task_for(n, self.generations, self.overrides, self.stops) for n in names}

    def document(self) -> dict[str, Any]:
        """What the results file records of the plan, so a run can be told and repeated."""
        return asdict(self)


def run(
    names: list[str],
    plan: Plan,
    jobs: int = 1,
    save: Path | None = None,
    sides: tuple[str, ...] = SIDES["both"],
) -> dict[str, Any]:
    """``sides`` on the plan's seeds of each task, ``jobs`` runs at a time; progress lines.
    With ``save``, the runs so far are rewritten there after each one (a cut-short run keeps
    its figures)."""
    tasks = plan.tasks(names)
    first = plan.first_seed
    todo = [
        (n, tasks[n], side, s)
        for n in names
        for s in range(first, first + plan.seeds)
        for side in sides
    ]
    out: dict[str, Any] = {n: {"ezspark": {}, "neat": {}} for n in names}
    with ProcessPoolExecutor(jobs) as pool:
        for i, (name, side, seed, r) in enumerate(pool.map(_one, todo), 1):
            out[name][side][seed] = r
            if save is not None:
                save.write_text(json.dumps({**plan.document(), "results": _lists(out)}))
            print(
                f"[{i}/{len(todo)}] {name} {side:7} seed {seed}: "
                f"{'solved' if r['solved'] else 'not solved'}, best {r['best']:.1f}, "
                f"{r['generations']} gens, {r['evaluations']} evals, {r['seconds']:.1f} s"
                + (f", winner {r['new_games']:.1f} on new games" if "new_games" in r else ""),
                flush=True,
            )
    return _lists(out)


def _lists(out: dict[str, Any]) -> dict[str, Any]:
    """Per task and side, the runs in seed order (tasks with no run at all left out)."""
    return {
        n: {side: [v[s] for s in sorted(v)] for side, v in sides.items()}
        for n, sides in out.items()
        if any(sides.values())
    }


def rows(results: dict[str, Any], caps: Mapping[str, int | None] | None = None) -> list[str]:
    """The markdown table of ``results`` (``learn_table.rows``), each task with its sizes
    (its generation cap in ``caps`` when a run set one)."""
    caps = caps or {}
    labels = {
        n: f"{n} ({t.threshold:g}, {t.population} × {caps.get(n) or t.generations})"
        for n, t in TASKS.items()
    }
    return learn_table.rows(results, labels)


def baseline_missing(
    sides: tuple[str, ...], find: Callable[[str], object | None] = importlib.util.find_spec
) -> str | None:
    """Why neat-python's side cannot run (it is not installed), or None; checked before the
    first run, since a worker's import error would end the whole run after hours of work."""
    if "neat" in sides and find("neat") is None:
        return "neat-python is not installed: pip install -r benchmarks/requirements.txt"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (a core each)")
    parser.add_argument("--sides", choices=sorted(SIDES), default="both", help="ours: EzSpark")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds from this one on")
    parser.add_argument("--generations", type=int, help="every task's cap, both sides")
    parser.add_argument(
        "--no-stop",
        dest="stops",
        action="store_false",
        help="run both sides to the cap, not to the threshold (judge the winners at one budget)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an EzSpark config key on top of each task's (repeatable; VALUE as JSON)",
    )
    parser.add_argument(
        "--table",
        nargs="+",
        type=Path,
        help="only print the table of these files (seed ranges joined)",
    )
    return parser


def _print_table(paths: list[Path], parser: argparse.ArgumentParser) -> None:
    """``--table``: the joined table of earlier runs' files."""
    files = [json.loads(p.read_text()) for p in paths]
    try:
        merged = learn_table.merge(files)
    except ValueError as exc:
        parser.error(str(exc))
    if not all(f.get("stops", True) for f in files):
        print(TO_THE_CAP)
    print("\n".join(rows(merged, learn_table.task_caps(files))))


def main() -> None:
    """Run the tasks, print the table, write the JSON."""
    parser = _parser()
    args = parser.parse_args()
    if args.table:
        _print_table(args.table, parser)
        return
    problem = baseline_missing(SIDES[args.sides])
    if problem:
        parser.error(f"{problem} (or run --sides ours)")
    try:
        overrides = parse_overrides(args.set)
        plan = Plan(args.seeds, args.first_seed, args.generations, overrides, args.stops)
        problem = plan_problem(plan, args.tasks)
    except ValueError as exc:
        problem = str(exc)
    if problem:
        parser.error(problem)
    path = learn_table.new_results_file(RESULTS)
    results = run(args.tasks, plan, args.jobs, save=path, sides=SIDES[args.sides])
    if not plan.stops:
        print(TO_THE_CAP)
    print("\n".join(rows(results, dict.fromkeys(args.tasks, plan.generations))))
    print(f"\nresults written to {path}")


def plan_problem(plan: Plan, names: list[str]) -> str | None:
    """Why the plan cannot run (a bad seed range, cap or key), or None; found before the
    first run, as the settings are checked by the config's own validation."""
    if plan.seeds < 1 or plan.first_seed < 0:
        return "--seeds must be at least 1 and --first-seed at least 0"
    if plan.generations is not None and plan.generations < 1:
        return "--generations must be at least 1"
    for task in plan.tasks(names).values():
        try:
            ours_config(task, plan.first_seed)
        except ValueError as exc:  # pydantic's ValidationError is one
            return f"--set: {exc}"
    return None


if __name__ == "__main__":
    main()
