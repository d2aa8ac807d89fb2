"""The evolver's checkpoints append history instead of rewriting it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ezspark_common.trainer.checkpoints import load_checkpoint
from ezspark_common.trainer.training import GenerationReport, TrainingState, start
from ezspark_evolver.store import TrainingStore
from tests.support.configs import small_config

TID = "t-1"


def _report(generation: int) -> GenerationReport:
    return GenerationReport(generation, 1.0 + generation, 0.5, 0, 1, 40, 40, 400, 0, 0.1)


def _with_history(state: TrainingState, count: int) -> TrainingState:
    return replace(state, history=tuple(_report(g) for g in range(count)))


def test_checkpoint_size_does_not_grow_with_history(tmp_path: Path) -> None:
    """After 300 generations the checkpoint is as large as after 1; the reports sit one per
    line in history.jsonl, and loading gives the whole history back."""
    store = TrainingStore(tmp_path)
    state = start(small_config())
    store.create(TID, {"owner": "ada"}, state)
    sizes = []
    for generation in range(1, 301):
        store.save(TID, _with_history(state, generation))
        sizes.append((tmp_path / TID / "checkpoint.json").stat().st_size)
    assert sizes[-1] - sizes[0] < 16  # the history_length digits only
    lines = (tmp_path / TID / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["generation"] for line in lines] == list(range(300))
    assert load_checkpoint(tmp_path / TID).history == _with_history(state, 300).history


def test_lines_a_crash_left_without_their_checkpoint_are_ignored_then_dropped(
    tmp_path: Path,
) -> None:
    """A report appended before a crash, whose checkpoint never came, is not loaded, and a
    new process rewrites the file to what its checkpoint counts."""
    store = TrainingStore(tmp_path)
    state = start(small_config())
    store.create(TID, {}, _with_history(state, 5))
    with open(tmp_path / TID / "history.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(_report(5).to_dict()) + "\n")
    assert len(load_checkpoint(tmp_path / TID).history) == 5
    restarted = TrainingStore(tmp_path)
    restarted.save(TID, _with_history(state, 5))
    assert len((tmp_path / TID / "history.jsonl").read_text().splitlines()) == 5
