"""A run directory on disk: checkpoint, saved genomes and history (the embedded trainer's
and, per training, the evolver's).

Layout (documented in docs/embedded.md):

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
from pathlib import Path
from typing import Any

from ezspark_common.trainer.training import (
    BestGenome,
    GenerationReport,
    TrainingState,
    genome_document,
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
