"""Running the embedded trainer in a test, and comparing its results."""

from __future__ import annotations

import json
from pathlib import Path

from ezspark_common.config import TrainingConfig
from ezspark_common.trainer.embedded import run_embedded
from ezspark_common.trainer.evaluators import EmbeddedEvaluator
from ezspark_common.trainer.training import TrainingState, start, state_to_dict


def fingerprint(state: TrainingState) -> str:
    """Genomes, species and last fitnesses of a state, as comparable text."""
    data = state_to_dict(state)
    return json.dumps([data["population"], data["last_outcomes"]], sort_keys=True)


def train(config: TrainingConfig, out: Path, workers: int) -> TrainingState:
    """Run the embedded trainer to the end."""
    evaluator = EmbeddedEvaluator(workers)
    try:
        return run_embedded(start(config), evaluator, out)
    finally:
        evaluator.close()
