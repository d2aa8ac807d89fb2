"""The embedded trainer's I/O edge: checkpoints, saved genomes and history on disk.

Output directory layout (documented in docs/embedded.md):

- ``checkpoint.json``: the state at the start of the generation being evaluated (or the
  final state); ``--resume DIR`` continues from it and reaches the same result.
- ``best.json``: the best genome so far, replayable with ``ezspark play``.
- ``genomes/gen-NNNNNN.json``: the best genome of every ``saving``-th generation.
- ``history.jsonl``: one generation report per line.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ezspark_common.config import TrainingConfig, config_with
from ezspark_common.local import LocalEvaluator
from ezspark_common.neat.population import next_generation
from ezspark_common.training import (
    BestGenome,
    GenerationReport,
    TrainingState,
    advance,
    genome_document,
    report_for,
    state_from_dict,
    state_to_dict,
)

CHECKPOINT = "checkpoint.json"
HISTORY = "history.jsonl"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a crash leaves the old file or the new one, never half."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_history(out_dir: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` reports of ``history.jsonl`` (later lines were appended before a
    crash kept their checkpoint from being written: they do not count)."""
    reports = []
    with open(out_dir / HISTORY, encoding="utf-8") as fh:
        for line in itertools.islice(fh, count):
            reports.append(json.loads(line))
    if len(reports) != count:
        raise ValueError(f"{HISTORY} has {len(reports)} reports, the checkpoint counts {count}")
    return reports


def load_checkpoint(out_dir: Path) -> TrainingState:
    """Read a run directory's checkpoint: history inline, or (the evolver's, which appends
    it) the first ``history_length`` lines of ``history.jsonl``."""
    with open(out_dir / CHECKPOINT, encoding="utf-8") as fh:
        data = json.load(fh)
    if "history_length" in data:
        data["history"] = read_history(out_dir, int(data["history_length"]))
    return state_from_dict(data)


def save_generation(
    out_dir: Path,
    before: TrainingState,
    after: TrainingState,
    report: GenerationReport,
    returns: tuple[float, ...],
) -> None:
    """Checkpoint ``after``, then the saved genomes (``save_genomes``)."""
    write_json(out_dir / CHECKPOINT, state_to_dict(after))
    save_genomes(out_dir, before, after, report, returns)


def save_genomes(
    out_dir: Path,
    before: TrainingState,
    after: TrainingState,
    report: GenerationReport,
    returns: tuple[float, ...],
) -> None:
    """The generation's best every ``saving`` generations, and the best so far.  The
    embedded trainer and the evolver share it."""
    config = before.config
    due = report.generation % config.saving == 0
    if due:
        genome = before.population.genomes[report.best_genome_key]
        this_gen = BestGenome(genome, report.best_fitness, report.generation, returns)
        (out_dir / "genomes").mkdir(exist_ok=True)
        write_json(
            out_dir / "genomes" / f"gen-{report.generation:06d}.json",
            genome_document(this_gen, config),
        )
    if (due or after.finished) and after.best is not None:
        write_json(out_dir / "best.json", genome_document(after.best, config))


def with_stopping_rules(state: TrainingState, config: TrainingConfig) -> TrainingState:
    """``state`` under ``config``'s ``generations`` and ``fitness_threshold`` (the only keys a
    resumed run may change).  A run those rules no longer stop is reopened where it stopped,
    bred from its last outcomes as if it had had them from the start."""
    rules = config_with(
        state.config, generations=config.generations, fitness_threshold=config.fitness_threshold
    )
    state = replace(state, config=rules)
    if state.finished not in ("generations", "fitness_threshold") or not state.history:
        return state
    threshold = rules.fitness_threshold
    if state.generation + 1 >= rules.generations or (
        threshold is not None and state.history[-1].best_fitness >= threshold
    ):
        return state  # still over
    fitness = {k: o.mean for k, o in state.last_outcomes.items()}
    population = next_generation(state.population, fitness, rules)
    return replace(state, population=population, finished=None, last_outcomes={})


def run_embedded(
    state: TrainingState,
    evaluator: LocalEvaluator,
    out_dir: Path,
    on_report: Callable[[GenerationReport], None] = lambda r: None,
    stop_at: int | None = None,
) -> TrainingState:
    """Evaluate and breed until the run finishes (or reaches generation ``stop_at``, e.g.
    the end of the alone phase); Ctrl-C leaves a resumable checkpoint."""
    out_dir.mkdir(parents=True, exist_ok=True)
    history = out_dir / "history.jsonl"
    # Rewritten from the state, so a resumed run's history has no line the state lacks.
    history.write_text(
        "".join(json.dumps(r.to_dict()) + "\n" for r in state.history), encoding="utf-8"
    )
    write_json(out_dir / CHECKPOINT, state_to_dict(state))
    while not state.finished and (stop_at is None or state.generation < stop_at):
        started = time.perf_counter()
        result = evaluator.evaluate(state.population, state.config)
        report = report_for(
            state,
            result.outcomes,
            time.perf_counter() - started,
            result.checks,
            result.mismatches,
        )
        before = state
        state = advance(state, result.outcomes, report)
        # Checkpoint first: the history on disk never runs ahead of the checkpoint.
        save_generation(
            out_dir, before, state, report, result.outcomes[report.best_genome_key].returns
        )
        with open(history, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(report.to_dict()) + "\n")
        on_report(report)
    return state
