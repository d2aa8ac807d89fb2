"""Cutting a generation's evaluation into tasks, and putting the results back together.

A task is a batch of genomes × a group of ``sub_games`` consecutive games.  However the
work is cut and whoever runs it, merging gives each genome its returns in game order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ezspark_common import rng as rngs
from ezspark_common.config import TrainingConfig
from ezspark_common.evaluation.batch import GameSetup, Outcome, OutcomeTable, evaluate_table
from ezspark_common.evaluation.games import EnvPool
from ezspark_common.wire.messages import EvaluationTask


@dataclass(frozen=True)
class TaskPlan:
    """Which genomes play which games: one task of a generation, before anyone runs it
    (the evolver sends it as an ``EvaluationTask``; the embedded trainer runs it as an
    ``workers.Batch``)."""

    index: int
    genome_keys: tuple[int, ...]
    game_indices: tuple[int, ...]


def task_setup(task: EvaluationTask) -> GameSetup:
    """The game setup a task message carries."""
    return GameSetup(
        env_id=task.env_id,
        max_steps=task.max_steps,
        reward_floor=task.reward_floor,
        n_inputs=task.input_size,
        n_outputs=task.output_size,
        recurrent=task.recurrent,
        behaviour=task.behaviour,
        input_scaling=None
        if task.input_scaling_seed is None
        else (task.input_scaling_seed, task.max_steps),
    )


def evaluate_task(task: EvaluationTask, envs: EnvPool | None = None) -> OutcomeTable:
    """Play a task's genomes on its games, as an evaluator does (one row per genome);
    ``envs`` is the caller's environment pool."""
    return evaluate_table(task.genomes, task_setup(task), task.game_seeds, envs=envs)


def game_groups(n_games: int, sub_games: int) -> list[tuple[int, ...]]:
    """Game indices cut into groups of ``sub_games`` (the last may be shorter)."""
    return [tuple(range(i, min(i + sub_games, n_games))) for i in range(0, n_games, sub_games)]


def split_tasks(
    keys: Sequence[int],
    n_games: int,
    sub_games: int,
    batch_size: int | Sequence[int],
    first_index: int = 0,
) -> list[TaskPlan]:
    """Every (genome chunk × game group) pair as a task; chunks of ``batch_size`` genomes,
    or of the given sizes in order (the last chunk takes whatever is left)."""
    if isinstance(batch_size, int):
        chunks = [tuple(keys[i : i + batch_size]) for i in range(0, len(keys), batch_size)]
    else:
        chunks, start = [], 0
        for size in batch_size:
            if start >= len(keys):
                break
            chunks.append(tuple(keys[start : start + size]))
            start += size
        if start < len(keys):
            chunks.append(tuple(keys[start:]))
    groups = game_groups(n_games, sub_games)
    pairs = [(chunk, group) for chunk in chunks for group in groups]
    return [TaskPlan(first_index + i, c, g) for i, (c, g) in enumerate(pairs)]


def safeness_sample(config: TrainingConfig, generation: int, keys: Sequence[int]) -> list[int]:
    """The genomes double-checked this generation: ``round(safeness · P)`` of them."""
    count = min(len(keys), int(np.floor(config.safeness * len(keys) + 0.5)))
    if count == 0:
        return []
    rng = rngs.generator(config.seed, rngs.SAFENESS, generation)
    picked = rng.choice(len(keys), size=count, replace=False)
    return [keys[int(i)] for i in np.sort(picked)]


MAX_OUTCOME_ERROR = 2000  # characters of a failed genome's message kept after merging


def merge_outcomes(
    parts: Iterable[tuple[TaskPlan, Sequence[Outcome]]], n_games: int, reward_floor: float
) -> dict[int, Outcome]:
    """Assemble per-task outcomes into one Outcome per genome over all its games."""
    returns: dict[int, list[float]] = {}
    behaviour: dict[int, list[tuple[float, ...]]] = {}
    steps: dict[int, int] = {}
    errors: dict[int, tuple[int, str]] = {}  # (first game of the task, message)
    for plan, outcomes in parts:
        for outcome in outcomes:
            row = returns.setdefault(outcome.key, [float("nan")] * n_games)
            for game, value in zip(plan.game_indices, outcome.returns, strict=True):
                row[game] = value
            if outcome.behaviour:
                seen = behaviour.setdefault(outcome.key, [()] * n_games)
                for game, b in zip(plan.game_indices, outcome.behaviour, strict=True):
                    seen[game] = b
            steps[outcome.key] = steps.get(outcome.key, 0) + outcome.steps
            if outcome.error is not None:
                # The earliest game's message, whatever order the tasks came back in; cut
                # short, as it is kept with the run and may come from anyone's machine.
                found = (min(plan.game_indices), outcome.error[:MAX_OUTCOME_ERROR])
                errors[outcome.key] = min(errors.get(outcome.key, found), found)
    merged = {}
    for key, row in returns.items():
        if key in errors:
            row = [reward_floor] * n_games
        elif any(v != v for v in row):
            raise ValueError(f"genome {key} is missing games")
        seen = behaviour.get(key, [])
        # A genome's behaviour counts only if every one of its games reported one.
        described = tuple(seen) if seen and all(seen) and key not in errors else ()
        error = errors[key][1] if key in errors else None
        merged[key] = Outcome(key, tuple(row), steps[key], error, described)
    return merged


def plan_chunks(
    n_genomes: int,
    n_groups: int,
    slots: int,
    *,
    factor: float = 2.0,
    max_batch: int = 2000,
    seconds_per_genome: float | None = None,
    min_task_s: float = 0.05,
    max_task_s: float = 0.25,
) -> list[int]:
    """Genome chunk sizes, largest first, so every live evaluator stays busy to the end.

    Guided self-scheduling: each chunk takes ``1 / (factor · p)`` of the genomes still
    unassigned, where ``p = slots / n_groups`` is how many evaluators one chunk's tasks
    (one per game group) can occupy.  Big tasks go out first, and the last ones are small,
    so evaluators finish within a small task of each other whatever the tasks' costs.  No
    chunk is below ``min_task_s`` of measured work (``seconds_per_genome`` per genome and
    game group, once known), above ``max_task_s`` of it (which bounds how long another
    training's task waits behind one) or above ``max_batch`` genomes.  How the work is cut
    never changes a result, only how evenly it spreads.
    """
    # One slot gains nothing from smaller tasks (no one to balance with), and a bigger
    # batch evaluates faster: one chunk, bounded by max_task_s and max_batch.
    per_chunk = max(1.0, factor * slots / max(1, n_groups)) if slots > 1 else 1.0
    floor, cap = 1, max_batch
    if seconds_per_genome is not None and seconds_per_genome > 0:
        floor = math.ceil(min_task_s / seconds_per_genome)
        cap = max(1, min(max_batch, math.floor(max_task_s / seconds_per_genome)))
    sizes: list[int] = []
    left = n_genomes
    while left > 0:
        size = max(floor, math.ceil(left / per_chunk))
        size = min(size, cap, left)
        sizes.append(size)
        left -= size
    return sizes
