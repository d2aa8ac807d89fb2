"""The embedded trainer (``ezspark train``): the generation loop kept in a run directory.

``run_embedded`` runs ``generations.run_generations`` with a :class:`RunDirectory`: each
generation is checkpointed, its genomes saved, then its report appended to
``history.jsonl`` and printed.  Ctrl-C leaves the last checkpoint, and ``--resume``
continues from it to the result an uninterrupted run gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ezspark_common.config import TrainingConfig, config_with
from ezspark_common.neat.population import next_generation
from ezspark_common.trainer.checkpoints import CHECKPOINT, HISTORY, save_generation, write_json
from ezspark_common.trainer.generations import Evaluator, run_generations
from ezspark_common.trainer.training import GenerationReport, TrainingState, state_to_dict


class RunDirectory:
    """A ``GenerationSink`` writing to ``out``: checkpoint first, then the history line."""

    def __init__(
        self, out: Path, on_report: Callable[[GenerationReport], None] = lambda r: None
    ) -> None:
        self.out = out
        self._on_report = on_report

    def start(self, state: TrainingState) -> None:
        """Write ``state``'s checkpoint and history (rewritten from the state, so a resumed
        run's history has no line the state lacks)."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / HISTORY).write_text(
            "".join(json.dumps(r.to_dict()) + "\n" for r in state.history), encoding="utf-8"
        )
        write_json(self.out / CHECKPOINT, state_to_dict(state))

    def stop_reason(self) -> str | None:
        """Never: Ctrl-C interrupts the run instead, leaving the last checkpoint."""
        return None

    def keep(
        self,
        before: TrainingState,
        after: TrainingState,
        report: GenerationReport | None,
        returns: tuple[float, ...],
    ) -> None:
        """Checkpoint ``after`` and save the generation's genomes."""
        if report is None:
            write_json(self.out / CHECKPOINT, state_to_dict(after))
        else:
            save_generation(self.out, before, after, report, returns)

    def tell(self, before: TrainingState, after: TrainingState, report: GenerationReport) -> None:
        """Append the report to the history (after the checkpoint), then pass it on."""
        with open(self.out / HISTORY, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(report.to_dict()) + "\n")
        self._on_report(report)


def run_embedded(
    state: TrainingState,
    evaluator: Evaluator,
    out_dir: Path,
    on_report: Callable[[GenerationReport], None] = lambda r: None,
    stop_at: int | None = None,
) -> TrainingState:
    """Evaluate and breed until the run finishes (or reaches generation ``stop_at``, e.g.
    the end of the alone phase); Ctrl-C leaves a resumable checkpoint."""
    directory = RunDirectory(out_dir, on_report)
    directory.start(state)
    return run_generations(state, evaluator, directory, stop_at=stop_at)


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
