"""The evolver's disk: one directory per training under ``data_dir``.

``<data_dir>/<training_id>/``:

- ``training.json``: who asked and when (written before the request is acked).
- ``checkpoint.json``: the state at the start of the generation being evaluated, or the
  final state (``runner.write_json`` + ``training.state_to_dict``, atomic), without its
  history: ``history_length`` counts the valid lines of
- ``history.jsonl``: one generation report per line, appended (and fsynced) before the
  checkpoint that counts it, so a checkpoint costs the same at generation 5 and 5,000.
- ``best.json``, ``genomes/gen-NNNNNN.json``: as the embedded trainer writes them.
- ``quarantine.json``: evaluators caught disagreeing; their results stay ignored.
- ``stop-requested``: a StopRequested arrived (survives a restart).
- ``final.json``: the final event, written once it was published: nothing left to do.

A directory with a checkpoint and no ``final.json`` is resumed at start-up.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ezspark_common.trainer.checkpoints import (
    CHECKPOINT,
    HISTORY,
    load_checkpoint,
    save_genomes,
    write_json,
)
from ezspark_common.trainer.handoff import saved_genome
from ezspark_common.trainer.training import (
    GenerationReport,
    TrainingState,
    state_to_dict,
)
from ezspark_common.wire.messages import SavedGenome

# Ids become directory names: no separators, no dot-files, bounded length.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def valid_training_id(training_id: str) -> bool:
    """Whether ``training_id`` is safe to use as a directory name."""
    return _ID_RE.fullmatch(training_id) is not None


class TrainingStore:
    """Reads and writes training directories (paths only; callers serialise access)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # history.jsonl lines known valid per training, since this process wrote them.
        self._history_lines: dict[str, int] = {}

    def path(self, training_id: str) -> Path:
        """The training's directory (the id must be valid)."""
        if not valid_training_id(training_id):
            raise ValueError(f"invalid training id {training_id!r}")
        return self.root / training_id

    def exists(self, training_id: str) -> bool:
        """Whether the training was accepted (it has a checkpoint)."""
        return (self.path(training_id) / CHECKPOINT).is_file()

    def create(self, training_id: str, meta: dict[str, Any], state: TrainingState) -> None:
        """Record a new training and its generation-0 checkpoint."""
        out = self.path(training_id)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "training.json", meta)
        self._checkpoint(training_id, state)

    def load(self, training_id: str) -> TrainingState:
        """The last checkpoint."""
        return load_checkpoint(self.path(training_id))

    def save(self, training_id: str, state: TrainingState) -> None:
        """Checkpoint ``state``."""
        self._checkpoint(training_id, state)

    def save_generation(
        self,
        training_id: str,
        before: TrainingState,
        after: TrainingState,
        report: GenerationReport,
        returns: tuple[float, ...],
    ) -> None:
        """Checkpoint first, then the saved genomes (the embedded trainer's layout)."""
        self._checkpoint(training_id, after)
        save_genomes(self.path(training_id), before, after, report, returns)

    def _checkpoint(self, training_id: str, state: TrainingState) -> None:
        """Append the new reports to ``history.jsonl``, then write the checkpoint that
        counts them; the first write of a process rewrites the file (dropping any line a
        crash left without its checkpoint)."""
        out = self.path(training_id)
        history = [r.to_dict() for r in state.history]
        known = self._history_lines.get(training_id)
        if known is None or known > len(history):
            tmp = out / (HISTORY + ".tmp")
            self._write_lines(tmp, history, "w")
            os.replace(tmp, out / HISTORY)
        else:
            self._write_lines(out / HISTORY, history[known:], "a")
        self._history_lines[training_id] = len(history)
        document = state_to_dict(replace(state, history=()))
        document["history_length"] = len(history)
        write_json(out / CHECKPOINT, document)

    @staticmethod
    def _write_lines(path: Path, reports: list[dict[str, Any]], mode: str) -> None:
        with open(path, mode, encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in reports)
            fh.flush()
            os.fsync(fh.fileno())

    def saved_genomes(
        self, training_id: str, generation: int, saving: int, final: bool
    ) -> tuple[SavedGenome | None, SavedGenome | None]:
        """The genomes ``save_generation`` wrote for ``generation``: its best (every
        ``saving``-th one) and the best so far (then and at the end); None where absent."""
        due = generation % saving == 0
        this = self._read(training_id, f"genomes/gen-{generation:06d}.json") if due else None
        best = self._read(training_id, "best.json") if due or final else None
        return (
            None if this is None else saved_genome(this),
            None if best is None else saved_genome(best),
        )

    def owner(self, training_id: str) -> str:
        """Who asked for the training ("" if unknown)."""
        meta = self._read(training_id, "training.json") or {}
        return str(meta.get("owner", ""))

    def quarantined(self, training_id: str) -> set[str]:
        """Evaluators whose results this training ignores."""
        return set(self._read(training_id, "quarantine.json") or [])

    def save_quarantine(self, training_id: str, evaluators: set[str]) -> None:
        """Persist the quarantine list."""
        write_json(self.path(training_id) / "quarantine.json", sorted(evaluators))

    def request_stop(self, training_id: str) -> None:
        """Remember a stop request across restarts."""
        (self.path(training_id) / "stop-requested").touch()

    def stop_requested(self, training_id: str) -> bool:
        """Whether a stop was requested."""
        return (self.path(training_id) / "stop-requested").exists()

    def mark_final(self, training_id: str, event: dict[str, Any]) -> None:
        """The final event went out: the training needs nothing more."""
        write_json(self.path(training_id) / "final.json", event)

    def is_final(self, training_id: str) -> bool:
        """Whether the final event was published."""
        return (self.path(training_id) / "final.json").is_file()

    def unfinished(self) -> list[tuple[float, str, str]]:
        """``(requested_at, training_id, owner)`` of accepted trainings still owing work or
        their final event, oldest request first."""
        found: list[tuple[float, str, str]] = []
        for child in self.root.iterdir():
            tid = child.name
            if not valid_training_id(tid) or not self.exists(tid) or self.is_final(tid):
                continue
            meta = self._read(tid, "training.json") or {}
            found.append((float(meta.get("requested_at", 0.0)), tid, str(meta.get("owner", ""))))
        return sorted(found)

    def _read(self, training_id: str, name: str) -> Any:
        try:
            with open(self.path(training_id) / name, encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return None
